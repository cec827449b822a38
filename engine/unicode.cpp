#include "engine/unicode.h"

namespace kiln::unicode {

size_t utf8_seq_len(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return uint8_t(s[i + k]); };
    const size_t left = s.size() - i;
    const uint8_t c = b(0);
    if (c < 0x80) return 1;
    size_t n;
    uint32_t min_cpt;
    if ((c & 0xE0) == 0xC0) { n = 2; min_cpt = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; min_cpt = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; min_cpt = 0x10000; }
    else return 0;
    if (left < n) return 0;
    uint32_t cpt = c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xC0) != 0x80) return 0;
        cpt = (cpt << 6) | (b(k) & 0x3F);
    }
    if (cpt < min_cpt || cpt > 0x10FFFF || (cpt >= 0xD800 && cpt <= 0xDFFF)) return 0;
    return n;
}

uint32_t utf8_decode(std::string_view s, size_t i, size_t n) {
    const uint8_t c = uint8_t(s[i]);
    if (n == 1) return c;
    uint32_t cpt = c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) cpt = (cpt << 6) | (uint8_t(s[i + k]) & 0x3F);
    return cpt;
}

std::string cpt_to_utf8(uint32_t cpt) {
    std::string r;
    if (cpt < 0x80) {
        r += char(cpt);
    } else if (cpt < 0x800) {
        r += char(0xC0 | (cpt >> 6));
        r += char(0x80 | (cpt & 0x3F));
    } else if (cpt < 0x10000) {
        r += char(0xE0 | (cpt >> 12));
        r += char(0x80 | ((cpt >> 6) & 0x3F));
        r += char(0x80 | (cpt & 0x3F));
    } else {
        r += char(0xF0 | (cpt >> 18));
        r += char(0x80 | ((cpt >> 12) & 0x3F));
        r += char(0x80 | ((cpt >> 6) & 0x3F));
        r += char(0x80 | (cpt & 0x3F));
    }
    return r;
}

namespace {
// Code point of each byte in GPT-2's map.
std::array<uint32_t, 256> make_byte_cpts() {
    std::array<uint32_t, 256> cpt{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        cpt[b] = printable ? b : next++;
    }
    return cpt;
}
const std::array<uint32_t, 256>& byte_cpts() {
    static const std::array<uint32_t, 256> c = make_byte_cpts();
    return c;
}
}  // namespace

const std::array<std::string, 256>& byte_to_bpe_char() {
    static const std::array<std::string, 256> m = [] {
        std::array<std::string, 256> r;
        for (int b = 0; b < 256; ++b) r[b] = cpt_to_utf8(byte_cpts()[b]);
        return r;
    }();
    return m;
}

int bpe_cpt_to_byte(uint32_t cpt) {
    // The map's image is [0x21, 0x143]: bytes map to themselves or to 256 + n, n < 68.
    static const std::array<int16_t, 0x144> inv = [] {
        std::array<int16_t, 0x144> r;
        r.fill(-1);
        for (int b = 0; b < 256; ++b) r[byte_cpts()[b]] = int16_t(b);
        return r;
    }();
    return cpt < inv.size() ? inv[cpt] : -1;
}

}  // namespace kiln::unicode
