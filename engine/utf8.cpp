#include "engine/utf8.h"

#include <algorithm>
#include <cstdint>

namespace kiln {

namespace {

// How one step of decoding at the start of a byte range ended.
enum class Step { complete, ill_formed, truncated };

struct Decoded {
    Step step;
    std::size_t length;  // bytes consumed: the character, or the maximal ill-formed subpart
};

// Unicode Table 3-7 (well-formed byte sequences): the lead byte fixes the
// length and the allowed range of the second byte; later bytes are 80..BF.
// Restricting the second byte is what rules out overlongs (E0 80..9F,
// F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..).
Decoded decode_one(const unsigned char* s, std::size_t n) {
    const unsigned char lead = s[0];
    if (lead < 0x80) return {Step::complete, 1};
    std::size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) lo = 0xA0;
        if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) lo = 0x90;
        if (lead == 0xF4) hi = 0x8F;
    } else {
        return {Step::ill_formed, 1};  // 80..C1 (continuation or overlong lead), F5..FF
    }
    for (std::size_t i = 1; i < length; ++i) {
        if (i >= n) return {Step::truncated, i};
        const unsigned char b = s[i];
        const bool ok = (i == 1) ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) return {Step::ill_formed, i};
    }
    return {Step::complete, length};
}

// Decodes `bytes`, appending valid characters and U+FFFD for ill-formed
// subparts to `out`; returns the number of trailing bytes that form a
// truncated (possibly completable) sequence, which are not consumed.
std::size_t decode_into(std::string_view bytes, std::string& out) {
    const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    while (i < n) {
        const Decoded d = decode_one(s + i, n - i);
        switch (d.step) {
        case Step::complete:
            out.append(bytes.data() + i, d.length);
            break;
        case Step::ill_formed:
            out.append(utf8_replacement);
            break;
        case Step::truncated:
            return n - i;
        }
        i += d.length;
    }
    return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        // ASCII runs dominate real text; skip them without the table walk.
        if (s[i] < 0x80) {
            ++i;
            continue;
        }
        const Decoded d = decode_one(s + i, n - i);
        if (d.step != Step::complete) return false;
        i += d.length;
    }
    return true;
}

void Utf8Buffer::feed(std::string_view bytes, std::string& out) {
    std::size_t i = 0;
    // First finish the character left over from the previous feed, one byte
    // at a time, so a sequence split over several tokens is judged as a whole.
    while (n_pending_ > 0 && i < bytes.size()) {
        pending_[n_pending_++] = bytes[i++];
        const std::size_t left = decode_into(std::string_view(pending_, n_pending_), out);
        if (left == n_pending_) continue;  // still truncated: wait for more bytes
        // Something was emitted; bytes after it that are still truncated stay pending.
        for (std::size_t k = 0; k < left; ++k) pending_[k] = pending_[n_pending_ - left + k];
        n_pending_ = left;
    }
    if (i == bytes.size()) return;
    const std::string_view rest = bytes.substr(i);
    // A truncated sequence is at most 3 bytes (a 4-byte character minus one);
    // the min only tells the compiler so.
    const std::size_t left = std::min<std::size_t>(decode_into(rest, out), sizeof pending_ - 1);
    for (std::size_t k = 0; k < left; ++k) pending_[k] = rest[rest.size() - left + k];
    n_pending_ = left;
}

std::string Utf8Buffer::feed(std::string_view bytes) {
    std::string out;
    feed(bytes, out);
    return out;
}

std::string Utf8Buffer::flush() {
    std::string out;
    if (n_pending_ > 0) out.append(utf8_replacement);
    n_pending_ = 0;
    return out;
}

}  // namespace kiln
