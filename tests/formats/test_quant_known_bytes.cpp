// Blocks written byte by byte from the documented layouts decode to values
// computed by hand. This pins the nibble/bit order independently of the
// quantizers (which could be consistently wrong with the dequantizers).
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "formats/quant_blocks.h"
#include "formats/quant_traits.h"

using namespace kiln;

namespace {

std::vector<float> decode(GgmlType t, const std::vector<uint8_t>& bytes, int64_t n) {
    REQUIRE(bytes.size() == *tensor_bytes(t, uint64_t(n)));
    return dequantize(t, bytes.data(), n);
}

}  // namespace

TEST_CASE("q4_0 known bytes: fp16 d then low nibbles = elements 0..15, high = 16..31") {
    std::vector<uint8_t> b = {0x00, 0x38};  // d = 0.5 (fp16 0x3800, little-endian)
    for (int j = 0; j < 16; ++j) b.push_back(uint8_t(j | ((15 - j) << 4)));
    const auto y = decode(GgmlType::Q4_0, b, 32);
    for (int j = 0; j < 16; ++j) {
        CHECK(y[j] == 0.5f * float(j - 8));
        CHECK(y[j + 16] == 0.5f * float(7 - j));
    }
    // And the quantizer writes exactly these bytes back from those values.
    // (the extreme -4 is negative, so d = -4 / -8 = 0.5 > 0).
    CHECK(quantize(GgmlType::Q4_0, y.data(), 32) == b);
}

TEST_CASE("q8_0 known bytes: fp16 d then 32 int8") {
    std::vector<uint8_t> b = {0x00, 0x34};  // d = 0.25
    for (int j = 0; j < 32; ++j) b.push_back(uint8_t(int8_t(j - 16)));
    const auto y = decode(GgmlType::Q8_0, b, 32);
    for (int j = 0; j < 32; ++j) CHECK(y[j] == 0.25f * float(j - 16));
}

TEST_CASE("q5_0 known bytes: fifth bit of element j in bit j of qh") {
    std::vector<uint8_t> b = {0x00, 0x3C,               // d = 1
                              0x01, 0x00, 0x00, 0x80};  // qh: element 0 and element 31 have the high bit
    for (int j = 0; j < 16; ++j) b.push_back(0x3A);     // low nibble 10 (elements 0..15), high 3 (16..31)
    const auto y = decode(GgmlType::Q5_0, b, 32);
    CHECK(y[0] == float(10 + 16 - 16));
    for (int j = 1; j < 16; ++j) CHECK(y[j] == float(10 - 16));
    for (int j = 16; j < 31; ++j) CHECK(y[j] == float(3 - 16));
    CHECK(y[31] == float(3 + 16 - 16));
}

TEST_CASE("q4_K known bytes: d, dmin, 12 bytes of 6-bit scales/mins, nibble pairs per 64") {
    // Sub-block scales and mins chosen so that sub-blocks 4..7 need their top two bits.
    const int sc[8] = {1, 2, 3, 4, 21, 22, 23, 24};
    const int m[8] = {0, 2, 4, 6, 44, 45, 46, 47};
    std::vector<uint8_t> b = {0x00, 0x3C,  // d = 1
                              0x00, 0x38,  // dmin = 0.5
                              // bytes 0..3: sc[j] | (sc[j+4] >> 4) << 6
                              0x41, 0x42, 0x43, 0x44,
                              // bytes 4..7: m[j] | (m[j+4] >> 4) << 6
                              0x80, 0x82, 0x84, 0x86,
                              // bytes 8..11: (sc[j+4] & 15) | (m[j+4] & 15) << 4
                              0xC5, 0xD6, 0xE7, 0xF8};
    for (int k = 0; k < 128; ++k) b.push_back(uint8_t((k % 16) | ((15 - k % 16) << 4)));
    const auto y = decode(GgmlType::Q4_K, b, 256);
    for (int e = 0; e < 256; ++e) {
        // Byte k = 32*(e/64) + e%32; the low nibble for the first 32 of each 64.
        const int l = e % 32;
        const int q = (e % 64) < 32 ? l % 16 : 15 - l % 16;
        const int j = e / 32;
        CAPTURE(e);
        CHECK(y[e] == float(sc[j] * q) - 0.5f * float(m[j]));
    }
}

TEST_CASE("q6_K known bytes: ql/qh split per 128, int8 scales, d last") {
    // Levels q(e) = e % 64 (value q - 32) and alternating-sign scales.
    int8_t scales[16];
    for (int s = 0; s < 16; ++s) scales[s] = int8_t(s % 2 ? -(s / 2 + 1) : s / 2 + 1);
    uint8_t ql[128], qh[64];
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            // Elements l, l+32, l+64, l+96 of this half have levels l, l+32, l, l+32.
            ql[64 * h + l] = uint8_t((l & 15) | ((l & 15) << 4));       // low nibbles of elements l and l+64
            ql[64 * h + 32 + l] = uint8_t((l & 15) | ((l & 15) << 4));  // of elements l+32 and l+96
            const int hi_a = l >> 4, hi_b = (l + 32) >> 4;             // top two bits of l and l+32
            qh[32 * h + l] = uint8_t(hi_a | (hi_b << 2) | (hi_a << 4) | (hi_b << 6));
        }
    std::vector<uint8_t> b(ql, ql + 128);
    b.insert(b.end(), qh, qh + 64);
    for (int8_t s : scales) b.push_back(uint8_t(s));
    b.push_back(0x00);
    b.push_back(0x38);  // d = 0.5
    const auto y = decode(GgmlType::Q6_K, b, 256);
    for (int e = 0; e < 256; ++e) {
        CAPTURE(e);
        CHECK(y[e] == 0.5f * float(scales[e / 16]) * float(e % 64 - 32));
    }
}

TEST_CASE("q3_K and q2_K known bytes: 2-bit planes, hmask bit e/32 of byte e%32") {
    // Q2_K: every sub-block scale 2, min 1; d = 1, dmin = 0.25; level of element e = (e / 32) % 4.
    std::vector<uint8_t> b2(16, uint8_t(2 | (1 << 4)));
    for (int k = 0; k < 64; ++k) b2.push_back(uint8_t(0 | (1 << 2) | (2 << 4) | (3 << 6)));
    b2.insert(b2.end(), {0x00, 0x3C, 0x00, 0x34});
    const auto y2 = decode(GgmlType::Q2_K, b2, 256);
    for (int e = 0; e < 256; ++e) CHECK(y2[e] == 2.0f * float((e / 32) % 4) - 0.25f);

    // Q3_K: high bit set only for elements 0..31 (bit 0 of each hmask byte);
    // low bits as in Q2_K; scale of sub-block j = j - 8 (stored j + 24); d = 1.
    std::vector<uint8_t> b3(32, 0x01);
    for (int k = 0; k < 64; ++k) b3.push_back(uint8_t(0 | (1 << 2) | (2 << 4) | (3 << 6)));
    uint8_t sc[12] = {};
    for (int j = 0; j < 16; ++j) {
        const int stored = j - 8 + 32;
        if (j < 8) sc[j] |= uint8_t(stored & 15);
        else sc[j - 8] |= uint8_t((stored & 15) << 4);
        sc[8 + j % 4] |= uint8_t((stored >> 4) << (2 * (j / 4)));
    }
    b3.insert(b3.end(), sc, sc + 12);
    b3.insert(b3.end(), {0x00, 0x3C});
    const auto y3 = decode(GgmlType::Q3_K, b3, 256);
    for (int e = 0; e < 256; ++e) {
        const int q = (e / 32) % 4 - (e < 32 ? 0 : 4);
        CAPTURE(e);
        CHECK(y3[e] == float((e / 16 - 8) * q));
    }
}
