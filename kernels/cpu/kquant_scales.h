#pragma once
// The K-quants in one shape for integer dot products. Every block_qN_K row of
// 256 weights is, per 16-value sub-block j,  w = d * s_j * u - c * m_j  with
// unsigned u (<= 63), so against Q8_K activations (scale dx, sums bsum_j):
//     w . x = dx * (d * sum_j s_j * (u_j . q_j)  -  c * sum_j m_j * bsum_j)
//   Q2_K: u = q (0..3),   s, m = the nibbles of scales[j],   c = dmin
//   Q3_K: u = q + 4 (0..7), s = signed 6-bit scale, m = 4 s,  c = d
//   Q4_K: u = q (0..15),  s, m = 6-bit scale/min of the 32-value half, c = dmin
//   Q5_K: u = q (0..31),  as Q4_K
//   Q6_K: u = q + 32 (0..63), s = int8 scale, m = 32 s,       c = d
// u . q fits int16 pairs (maddubs: 2 * 63 * 127 < 2^15) and the sums int32.
//
// Included by each ISA's translation unit inside an unnamed namespace: the same
// source compiled with different flags must not become one ODR-merged symbol.
#include <cstdint>

#include "formats/quant_blocks.h"

struct KScales {
    int16_t s[16];
    int16_t m[16];
    float d;
    float c;
};

inline void kscales(const kiln::block_q2_K& b, KScales& k) {
    for (int j = 0; j < 16; ++j) {
        k.s[j] = int16_t(b.scales[j] & 0xF);
        k.m[j] = int16_t(b.scales[j] >> 4);
    }
    k.d = kiln::fp16_to_fp32(b.d);
    k.c = kiln::fp16_to_fp32(b.dmin);
}

inline void kscales(const kiln::block_q3_K& b, KScales& k) {
    for (int j = 0; j < 16; ++j) {
        k.s[j] = int16_t(kiln::q3_K_scale(b.scales, j));
        k.m[j] = int16_t(4 * k.s[j]);
    }
    k.d = k.c = kiln::fp16_to_fp32(b.d);
}

template <class Block>
inline void kscales_k4(const Block& b, KScales& k) {
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, mn;
        kiln::get_scale_min_k4(j, b.scales, &sc, &mn);
        k.s[2 * j] = k.s[2 * j + 1] = int16_t(sc);
        k.m[2 * j] = k.m[2 * j + 1] = int16_t(mn);
    }
    k.d = kiln::fp16_to_fp32(b.d);
    k.c = kiln::fp16_to_fp32(b.dmin);
}
inline void kscales(const kiln::block_q4_K& b, KScales& k) { kscales_k4(b, k); }
inline void kscales(const kiln::block_q5_K& b, KScales& k) { kscales_k4(b, k); }

inline void kscales(const kiln::block_q6_K& b, KScales& k) {
    for (int j = 0; j < 16; ++j) {
        k.s[j] = b.scales[j];
        k.m[j] = int16_t(32 * b.scales[j]);
    }
    k.d = k.c = kiln::fp16_to_fp32(b.d);
}

// Scalar u of each type (element e of the block), the layouts of quant_blocks.h.
inline int kq_two_bits(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

inline void kunpack(const kiln::block_q2_K& b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) u[e] = uint8_t(kq_two_bits(b.qs, e));
}
inline void kunpack(const kiln::block_q3_K& b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) u[e] = uint8_t(kq_two_bits(b.qs, e) + 4 * ((b.hmask[e % 32] >> (e / 32)) & 1));
}
inline void kunpack(const kiln::block_q4_K& b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) {
        const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
        u[e] = uint8_t((e / 32) % 2 ? byte >> 4 : byte & 0xF);
    }
}
inline void kunpack(const kiln::block_q5_K& b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) {
        const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
        const int low = (e / 32) % 2 ? byte >> 4 : byte & 0xF;
        u[e] = uint8_t(low | (((b.qh[e % 32] >> (e / 32)) & 1) << 4));
    }
}
inline void kunpack(const kiln::block_q6_K& b, uint8_t* u) {
    for (int e = 0; e < 256; ++e) {
        const int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
        const uint8_t ql = b.ql[64 * h + l + 32 * (quarter % 2)];
        const int low = quarter < 2 ? ql & 0xF : ql >> 4;
        u[e] = uint8_t(low | (((b.qh[32 * h + l] >> (2 * quarter)) & 3) << 4));
    }
}
