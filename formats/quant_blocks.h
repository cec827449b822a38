#pragma once
// Bit-exact layouts of the quantized blocks stored in GGUF tensor data
// (the facts of ggml's ggml-common.h). Every struct is packed by construction:
// members are ordered so that no padding appears, and the static_asserts pin
// the sizes the file format depends on. All multi-byte fields are little-endian.
#include <cstdint>

#include "formats/fp16.h"

namespace kiln {

inline constexpr int QK4_0 = 32;
inline constexpr int QK4_1 = 32;
inline constexpr int QK5_0 = 32;
inline constexpr int QK5_1 = 32;
inline constexpr int QK8_0 = 32;
inline constexpr int QK8_1 = 32;
// Super-block of the K-quants, and the size of the 6-bit scale/min packing of Q4_K/Q5_K.
inline constexpr int QK_K = 256;
inline constexpr int K_SCALE_SIZE = 12;

// ---- legacy blocks (32 weights) ----------------------------------------------

// 4.5 bits per weight. x = d * (q - 8), q in 0..15.
// qs[j] low nibble is element j, high nibble element j + 16.
struct block_q4_0 {
    fp16_t d;
    uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 2 + QK4_0 / 2, "block_q4_0 layout");

// 5 bits per weight. x = d * q + m, q in 0..15; nibbles as in Q4_0.
struct block_q4_1 {
    fp16_t d;
    fp16_t m;
    uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 4 + QK4_1 / 2, "block_q4_1 layout");

// 5.5 bits per weight. x = d * (q - 16), q in 0..31: low 4 bits in nibbles as
// in Q4_0, the fifth bit of element j in bit j of qh (a little-endian uint32).
struct block_q5_0 {
    fp16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 6 + QK5_0 / 2, "block_q5_0 layout");

// 6 bits per weight. x = d * q + m, q in 0..31; bits as in Q5_0.
struct block_q5_1 {
    fp16_t d;
    fp16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 8 + QK5_1 / 2, "block_q5_1 layout");

// 8.5 bits per weight. x = d * q.
struct block_q8_0 {
    fp16_t d;
    int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 2 + QK8_0, "block_q8_0 layout");

// 9 bits per weight; activation block for Q4_1/Q5_1 dot products.
// x = d * q; s = d * sum(q) lets the dot product fold in the weight's min.
struct block_q8_1 {
    fp16_t d;
    fp16_t s;
    int8_t qs[QK8_1];
};
static_assert(sizeof(block_q8_1) == 4 + QK8_1, "block_q8_1 layout");

// ---- K-quants (256-weight super-blocks) ---------------------------------------

// 2.625 bits per weight. 16 sub-blocks of 16: scales[i] low nibble is the
// sub-block scale, high nibble its min; x = d*sc*q - dmin*m, q in 0..3.
// Element e of each 128-half h lives in qs[32*h + e%32] at bits 2*((e%128)/32).
struct block_q2_K {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    fp16_t d;
    fp16_t dmin;
};
static_assert(sizeof(block_q2_K) == 2 * sizeof(fp16_t) + QK_K / 16 + QK_K / 4, "block_q2_K layout");

// 3.4375 bits per weight. 16 sub-blocks of 16 with signed 6-bit scales (stored +32):
// low 4 bits of scale j in scales[j%8] (low nibble for j<8, high for j>=8), high 2
// bits in scales[8 + j%4] at bits 2*(j/4). q = low 2 bits (packed as Q2_K) plus
// a high bit in hmask[e%32] bit e/32; x = d * (sc - 32) * (q - 4), where the
// "- 4" applies when the high bit is clear.
struct block_q3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[K_SCALE_SIZE];
    fp16_t d;
};
static_assert(sizeof(block_q3_K) == sizeof(fp16_t) + QK_K / 4 + QK_K / 8 + 12, "block_q3_K layout");

// 4.5 bits per weight. 8 sub-blocks of 32 with 6-bit scales and mins packed in
// 12 bytes (see get_scale_min_k4); x = d*sc*q - dmin*m, q in 0..15.
// Each 64 elements use 32 bytes of qs: low nibbles the first 32, high nibbles the next.
struct block_q4_K {
    fp16_t d;
    fp16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 2 * sizeof(fp16_t) + K_SCALE_SIZE + QK_K / 2, "block_q4_K layout");

// 5.5 bits per weight. As Q4_K plus a fifth bit: element e's high bit is
// qh[e%32] bit e/32; q in 0..31.
struct block_q5_K {
    fp16_t d;
    fp16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 2 * sizeof(fp16_t) + K_SCALE_SIZE + QK_K / 2 + QK_K / 8, "block_q5_K layout");

// 6.5625 bits per weight. 16 sub-blocks of 16 with int8 scales; x = d * sc * (q - 32).
// Per 128 elements: 64 bytes of ql (low nibbles elements 0..31 and 32..63 in
// ql[0..31] and ql[32..63], high nibbles elements 64..95 and 96..127) and 32
// bytes of qh (bits 2k..2k+1 of qh[l] are the top two bits of element l + 32k).
struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    fp16_t d;
};
static_assert(sizeof(block_q6_K) == sizeof(fp16_t) + QK_K / 16 + 3 * QK_K / 4, "block_q6_K layout");

// Activation block for K-quant dot products: float scale, int8 values and the
// sums of each 16 values (so a dot product can apply per-sub-block mins cheaply).
struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == sizeof(float) + QK_K + QK_K / 16 * sizeof(int16_t), "block_q8_K layout");

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block: j < 4 in
// the low 6 bits of q[j] / q[j+4]; j >= 4 split into a nibble of q[j+4] and the
// top two bits of q[j-4] / q[j].
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// The signed 6-bit scale of sub-block j (0..15) of a Q3_K block, already minus 32.
inline int q3_K_scale(const uint8_t* scales, int j) {
    const int low = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

}  // namespace kiln
