// Weight rows as GGUF stores them, read from a buffer of 32-bit words with
// shifts: no 8/16-bit storage feature is needed, and blocks may start at any
// even byte (a Q4_0 block is 18 bytes). Exactly one WTYPE_* is defined; it
// selects BLOCK_SIZE (elements per block), BLOCK_BYTES and
//   float dq(uint blk, uint j)  // element j of the block starting at byte blk
// Layouts and formulas: formats/quant_blocks.h and the reference dequantizers.
// w_word(i) is word i of the weight.
layout(std430, binding = 0) readonly buffer WeightWords { uint w_words[]; };
#define w_word(i) w_words[i]

uint w_u8(uint b) { return (w_word(b >> 2) >> ((b & 3u) * 8u)) & 0xFFu; }
uint w_u16(uint b) { return (w_word(b >> 2) >> ((b & 2u) * 8u)) & 0xFFFFu; }  // b even
int w_i8(uint b) { return int(w_u8(b) << 24) >> 24; }
float w_f16(uint b) { return unpackHalf2x16(w_u16(b)).x; }
uint w_u32(uint b) { return w_u16(b) | (w_u16(b + 2u) << 16); }  // b even

// Q4_K/Q5_K: 6-bit scale and min of sub-block s (0..7) packed in 12 bytes at sc.
void scale_min_k4(uint sc, uint s, out float d, out float m) {
    if (s < 4u) {
        d = float(w_u8(sc + s) & 63u);
        m = float(w_u8(sc + s + 4u) & 63u);
    } else {
        d = float((w_u8(sc + s + 4u) & 0xFu) | ((w_u8(sc + s - 4u) >> 6) << 4));
        m = float((w_u8(sc + s + 4u) >> 4) | ((w_u8(sc + s) >> 6) << 4));
    }
}

#if defined(WTYPE_F32)
#define BLOCK_SIZE 1u
#define BLOCK_BYTES 4u
float dq(uint blk, uint j) { return uintBitsToFloat(w_word(blk >> 2)); }
#elif defined(WTYPE_F16)
#define BLOCK_SIZE 1u
#define BLOCK_BYTES 2u
float dq(uint blk, uint j) { return w_f16(blk); }
#elif defined(WTYPE_BF16)
#define BLOCK_SIZE 1u
#define BLOCK_BYTES 2u
float dq(uint blk, uint j) { return uintBitsToFloat(w_u16(blk) << 16); }
#elif defined(WTYPE_Q4_0)
// d, qs[16]: low nibble of qs[j] is element j, high nibble element j + 16.
#define BLOCK_SIZE 32u
#define BLOCK_BYTES 18u
float dq(uint blk, uint j) {
    const uint q = w_u8(blk + 2u + (j & 15u));
    return float(int(j < 16u ? q & 0xFu : q >> 4) - 8) * w_f16(blk);
}
#elif defined(WTYPE_Q4_1)
// d, m, qs[16]: x = d * q + m.
#define BLOCK_SIZE 32u
#define BLOCK_BYTES 20u
float dq(uint blk, uint j) {
    const uint q = w_u8(blk + 4u + (j & 15u));
    return float(j < 16u ? q & 0xFu : q >> 4) * w_f16(blk) + w_f16(blk + 2u);
}
#elif defined(WTYPE_Q5_0)
// d, qh (bit j: fifth bit of element j), qs[16] as Q4_0; x = d * (q - 16).
#define BLOCK_SIZE 32u
#define BLOCK_BYTES 22u
float dq(uint blk, uint j) {
    const uint q = w_u8(blk + 6u + (j & 15u));
    const uint h = (w_u32(blk + 2u) >> j) & 1u;
    return float(int((j < 16u ? q & 0xFu : q >> 4) | (h << 4)) - 16) * w_f16(blk);
}
#elif defined(WTYPE_Q5_1)
// d, m, qh, qs[16]; x = d * q + m.
#define BLOCK_SIZE 32u
#define BLOCK_BYTES 24u
float dq(uint blk, uint j) {
    const uint q = w_u8(blk + 8u + (j & 15u));
    const uint h = (w_u32(blk + 4u) >> j) & 1u;
    return float((j < 16u ? q & 0xFu : q >> 4) | (h << 4)) * w_f16(blk) + w_f16(blk + 2u);
}
#elif defined(WTYPE_Q8_0)
// d, qs[32] int8.
#define BLOCK_SIZE 32u
#define BLOCK_BYTES 34u
float dq(uint blk, uint j) { return float(w_i8(blk + 2u + j)) * w_f16(blk); }
#elif defined(WTYPE_Q2_K)
// scales[16] @0 (low nibble scale, high nibble min), qs[64] @16, d @80, dmin @82.
#define BLOCK_SIZE 256u
#define BLOCK_BYTES 84u
float dq(uint blk, uint e) {
    const uint sc = w_u8(blk + e / 16u);
    const uint q = (w_u8(blk + 16u + (e / 128u) * 32u + e % 32u) >> (2u * ((e % 128u) / 32u))) & 3u;
    return w_f16(blk + 80u) * float(sc & 0xFu) * float(q) - w_f16(blk + 82u) * float(sc >> 4);
}
#elif defined(WTYPE_Q3_K)
// hmask[32] @0, qs[64] @32, scales[12] @96, d @108.
#define BLOCK_SIZE 256u
#define BLOCK_BYTES 110u
float dq(uint blk, uint e) {
    const uint s = e / 16u;
    const uint low = s < 8u ? w_u8(blk + 96u + s) & 0xFu : w_u8(blk + 96u + s - 8u) >> 4;
    const uint high = (w_u8(blk + 104u + s % 4u) >> (2u * (s / 4u))) & 3u;
    const int sc = int(low | (high << 4)) - 32;
    const int q = int((w_u8(blk + 32u + (e / 128u) * 32u + e % 32u) >> (2u * ((e % 128u) / 32u))) & 3u);
    const bool hb = ((w_u8(blk + e % 32u) >> (e / 32u)) & 1u) != 0u;
    return (w_f16(blk + 108u) * float(sc)) * float(q - (hb ? 0 : 4));
}
#elif defined(WTYPE_Q4_K)
// d @0, dmin @2, scales[12] @4, qs[128] @16: each 64 elements use 32 bytes,
// low nibbles the first 32, high nibbles the next 32.
#define BLOCK_SIZE 256u
#define BLOCK_BYTES 144u
float dq(uint blk, uint e) {
    float sc, m;
    scale_min_k4(blk + 4u, e / 32u, sc, m);
    const uint q = w_u8(blk + 16u + (e / 64u) * 32u + e % 32u);
    return (w_f16(blk) * sc) * float((e % 64u) < 32u ? q & 0xFu : q >> 4) - w_f16(blk + 2u) * m;
}
#elif defined(WTYPE_Q5_K)
// d @0, dmin @2, scales[12] @4, qh[32] @16 (bit e/32 of qh[e%32]), qs[128] @48.
#define BLOCK_SIZE 256u
#define BLOCK_BYTES 176u
float dq(uint blk, uint e) {
    float sc, m;
    scale_min_k4(blk + 4u, e / 32u, sc, m);
    const uint q = w_u8(blk + 48u + (e / 64u) * 32u + e % 32u);
    const uint h = (w_u8(blk + 16u + e % 32u) >> (e / 32u)) & 1u;
    return (w_f16(blk) * sc) * float(((e % 64u) < 32u ? q & 0xFu : q >> 4) | (h << 4)) - w_f16(blk + 2u) * m;
}
#elif defined(WTYPE_Q6_K)
// ql[128] @0, qh[64] @128, scales[16] int8 @192, d @208; per 128-element half h,
// quarter k of element e = 128h + 32k + l reads ql[64h + l (+32 for odd k)]
// (low nibble k < 2, high k >= 2) and bits 2k of qh[32h + l].
#define BLOCK_SIZE 256u
#define BLOCK_BYTES 210u
float dq(uint blk, uint e) {
    const uint h = e / 128u, k = (e % 128u) / 32u, l = e % 32u;
    const uint ql = w_u8(blk + 64u * h + l + ((k & 1u) != 0u ? 32u : 0u));
    const uint lo = k < 2u ? ql & 0xFu : ql >> 4;
    const uint hi = (w_u8(blk + 128u + 32u * h + l) >> (2u * k)) & 3u;
    const int sc = w_i8(blk + 192u + 8u * h + l / 16u + 2u * k);
    return w_f16(blk + 208u) * float(sc) * float(int(lo | (hi << 4)) - 32);
}
#else
#error "define one WTYPE_*"
#endif
