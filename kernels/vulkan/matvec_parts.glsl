// Weight blocks for the matrix-vector shader (matvec.comp), decoded a part at a
// time from 32-bit words (dequant.glsl decodes one element; it stays the
// reference layout and serves the scalar tail of float rows).
//
// A row is MV_BLOCKS blocks of MV_BLOCK elements and MV_BLOCK_BYTES bytes; each
// block is MV_PARTS parts of 4 * MV_NV elements, and one invocation decodes one
// part into MV_NV vec4s:
//   void mv_part(uint blk, uint pi, out vec4 w[MV_NV])  // block at byte blk, part pi
//   uint mv_x(uint pi, uint j)   // element offset in the block of w[j] (a multiple of 4)
// Parts are numbered so that parts pi and pi + 1 read neighbouring bytes of
// the quants: invocations taking consecutive parts read consecutive words.
//
// Blocks are read where GGUF puts them, not repacked at upload: matmul.comp and
// get_rows read the same buffer in the GGUF layout, and a second aligned copy
// would double the weights' memory. Blocks of Q4_0 (18 bytes), Q5_0, Q8_0,
// Q3_K, Q6_K and F16/BF16 rows of odd length start at any even byte, so their
// words are put together from two aligned loads (ld_any) that the cache
// serves: the bytes a warp reads are still one contiguous run.
//
// Layouts: formats/quant_blocks.h and the element formulas in dequant.glsl.

// The 32-bit little-endian word at byte b (b even; all four bytes inside one
// block, so both aligned words lie inside the buffer, whose size is whole words).
uint ld_any(uint b) {
    const uint i = b >> 2;
    return (b & 2u) == 0u ? w_word(i) : (w_word(i) >> 16) | (w_word(i + 1u) << 16);
}
uint ld_aligned(uint b) { return w_word(b >> 2); }

// The four bytes of q, each shifted right by s and masked: one element per byte.
uvec4 fields(uint q, uint s, uint mask) { return (uvec4(q, q >> 8, q >> 16, q >> 24) >> s) & mask; }
// Bits s..s+3 of q, one per element.
uvec4 bits(uint q, uint s) { return (uvec4(q) >> (uvec4(0u, 1u, 2u, 3u) + s)) & 1u; }
// n - bias for n < 2^23 without an int-to-float conversion (an eighth- or
// quarter-rate instruction on many GPUs, and this shader converts every weight):
// the float with bits 0x4B000000 | n is 2^23 + n, so subtracting 2^23 + bias
// (an integer, exact in a float) is exact.
vec4 to_float(uvec4 n, float bias) { return uintBitsToFloat(n | 0x4B000000u) - (8388608.0 + bias); }

#if defined(WTYPE_F32) || defined(WTYPE_F16) || defined(WTYPE_BF16)
// Float rows go by 8 elements; the n_in % 8 elements at the end of a row are
// matvec.comp's scalar tail (dq()).
#define MV_BLOCK 8u
#define MV_FLOAT_TAIL 1
#define MV_BLOCK_BYTES (8u * BLOCK_BYTES)
#define MV_PARTS 1u
#define MV_NV 2
uint mv_x(uint pi, uint j) { return 4u * j; }
#if defined(WTYPE_F32)
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const uint i = b >> 2;
    w[0] = uintBitsToFloat(uvec4(w_word(i), w_word(i + 1u), w_word(i + 2u), w_word(i + 3u)));
    w[1] = uintBitsToFloat(uvec4(w_word(i + 4u), w_word(i + 5u), w_word(i + 6u), w_word(i + 7u)));
}
#elif defined(WTYPE_F16)
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    w[0] = vec4(unpackHalf2x16(ld_any(b)), unpackHalf2x16(ld_any(b + 4u)));
    w[1] = vec4(unpackHalf2x16(ld_any(b + 8u)), unpackHalf2x16(ld_any(b + 12u)));
}
#else
vec2 bf16x2(uint q) { return uintBitsToFloat(uvec2(q << 16, q & 0xFFFF0000u)); }
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    w[0] = vec4(bf16x2(ld_any(b)), bf16x2(ld_any(b + 4u)));
    w[1] = vec4(bf16x2(ld_any(b + 8u)), bf16x2(ld_any(b + 12u)));
}
#endif

#elif defined(WTYPE_Q4_0) || defined(WTYPE_Q4_1) || defined(WTYPE_Q5_0) || defined(WTYPE_Q5_1) || defined(WTYPE_Q8_0)
// 32-element blocks: one part is the whole block, w[j] holds elements 4j..4j+3
// (j < 4: low nibbles of qs word j; j >= 4: its high nibbles).
#define MV_BLOCK 32u
#define MV_BLOCK_BYTES BLOCK_BYTES
#define MV_PARTS 1u
#define MV_NV 8
uint mv_x(uint pi, uint j) { return 4u * j; }
#if defined(WTYPE_Q4_0)
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const float d = w_f16(b);
    for (uint k = 0u; k < 4u; ++k) {
        const uint q = ld_any(b + 2u + 4u * k);
        w[k] = to_float(fields(q, 0u, 15u), 8.0) * d;
        w[k + 4u] = to_float(fields(q, 4u, 15u), 8.0) * d;
    }
}
#elif defined(WTYPE_Q4_1)
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const vec2 dm = unpackHalf2x16(ld_aligned(b));
    for (uint k = 0u; k < 4u; ++k) {
        const uint q = ld_aligned(b + 4u + 4u * k);
        w[k] = to_float(fields(q, 0u, 15u), 0.0) * dm.x + dm.y;
        w[k + 4u] = to_float(fields(q, 4u, 15u), 0.0) * dm.x + dm.y;
    }
}
#elif defined(WTYPE_Q5_0)
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const float d = w_f16(b);
    const uint qh = ld_any(b + 2u);
    for (uint k = 0u; k < 4u; ++k) {
        const uint q = ld_any(b + 6u + 4u * k);
        w[k] = to_float(fields(q, 0u, 15u) | (bits(qh, 4u * k) << 4), 16.0) * d;
        w[k + 4u] = to_float(fields(q, 4u, 15u) | (bits(qh, 16u + 4u * k) << 4), 16.0) * d;
    }
}
#elif defined(WTYPE_Q5_1)
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const vec2 dm = unpackHalf2x16(ld_aligned(b));
    const uint qh = ld_aligned(b + 4u);
    for (uint k = 0u; k < 4u; ++k) {
        const uint q = ld_aligned(b + 8u + 4u * k);
        w[k] = to_float(fields(q, 0u, 15u) | (bits(qh, 4u * k) << 4), 0.0) * dm.x + dm.y;
        w[k + 4u] = to_float(fields(q, 4u, 15u) | (bits(qh, 16u + 4u * k) << 4), 0.0) * dm.x + dm.y;
    }
}
#else  // Q8_0
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const float d = w_f16(b);
    // Signed bytes biased by 128 (the top bit flipped) are unsigned.
    for (uint k = 0u; k < 8u; ++k) w[k] = to_float(fields(ld_any(b + 2u + 4u * k) ^ 0x80808080u, 0u, 255u), 128.0) * d;
}
#endif

#else
// K-quants: 256-element blocks in 8 parts of 32 elements.
#define MV_BLOCK 256u
#define MV_BLOCK_BYTES BLOCK_BYTES
#define MV_PARTS 8u
#define MV_NV 8
#if defined(WTYPE_Q2_K) || defined(WTYPE_Q3_K)
// Element e = 128h + 32k + l takes bits 2k of qs[32h + l]. Part pi = 4h + 2lh + kp
// covers l in [16lh, 16lh + 16) for k = 2kp (w[0..3]) and k = 2kp + 1 (w[4..7]):
// four qs words, read twice (once per k pair) from the cache.
uint mv_x(uint pi, uint j) {
    const uint h = pi >> 2, lh = (pi >> 1) & 1u, k = 2u * (pi & 1u) + (j >> 2);
    return 128u * h + 32u * k + 16u * lh + 4u * (j & 3u);
}
#if defined(WTYPE_Q2_K)
// scales[16] @0 (low nibble scale, high nibble min of 16 elements), qs[64] @16, d @80, dmin @82.
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const uint h = pi >> 2, lh = (pi >> 1) & 1u, kp = pi & 1u;
    const vec2 dm = unpackHalf2x16(ld_aligned(b + 80u));
    for (uint kk = 0u; kk < 2u; ++kk) {
        const uint k = 2u * kp + kk;
        const uint sc = w_u8(b + 8u * h + 2u * k + lh);
        const float scale = dm.x * float(sc & 15u), mn = dm.y * float(sc >> 4);
        for (uint c = 0u; c < 4u; ++c)
            w[4u * kk + c] = to_float(fields(ld_aligned(b + 16u + 32u * h + 16u * lh + 4u * c), 2u * k, 3u), 0.0) * scale - mn;
    }
}
#else
// hmask[32] @0 (bit 4h + k of hmask[l]: the third bit, set means no -4), qs[64] @32,
// scales[12] @96 (6-bit, biased by 32), d @108.
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const uint h = pi >> 2, lh = (pi >> 1) & 1u, kp = pi & 1u;
    const float d = w_f16(b + 108u);
    for (uint kk = 0u; kk < 2u; ++kk) {
        const uint k = 2u * kp + kk;
        const uint s = 8u * h + 2u * k + lh;
        const uint low = s < 8u ? w_u8(b + 96u + s) & 15u : w_u8(b + 88u + s) >> 4;
        const uint high = (w_u8(b + 104u + (s & 3u)) >> (2u * (s >> 2))) & 3u;
        const float scale = d * float(int(low | (high << 4)) - 32);
        for (uint c = 0u; c < 4u; ++c) {
            const uvec4 q = fields(ld_any(b + 32u + 32u * h + 16u * lh + 4u * c), 2u * k, 3u);
            const uvec4 hb = fields(ld_any(b + 16u * lh + 4u * c), 4u * h + k, 1u);
            w[4u * kk + c] = to_float(q | (hb << 2), 4.0) * scale;
        }
    }
}
#endif
#elif defined(WTYPE_Q4_K) || defined(WTYPE_Q5_K)
// Group g of 64 elements: 32 qs bytes, low nibbles elements 64g + l (sub-block
// 2g), high nibbles 64g + 32 + l (sub-block 2g + 1). Part pi = 2g + hf covers
// l in [16hf, 16hf + 16): its 16 qs bytes are w[0..3] low, w[4..7] high.
uint mv_x(uint pi, uint j) { return 64u * (pi >> 1) + 16u * (pi & 1u) + (j < 4u ? 4u * j : 32u + 4u * (j - 4u)); }
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const uint g = pi >> 1, hf = pi & 1u;
    const vec2 dm = unpackHalf2x16(ld_aligned(b));
    float sc0, m0, sc1, m1;
    scale_min_k4(b + 4u, 2u * g, sc0, m0);
    scale_min_k4(b + 4u, 2u * g + 1u, sc1, m1);
    const float d0 = dm.x * sc0, d1 = dm.x * sc1, mn0 = dm.y * m0, mn1 = dm.y * m1;
    for (uint c = 0u; c < 4u; ++c) {
#if defined(WTYPE_Q4_K)
        const uint q = ld_aligned(b + 16u + 32u * g + 16u * hf + 4u * c);
        w[c] = to_float(fields(q, 0u, 15u), 0.0) * d0 - mn0;
        w[c + 4u] = to_float(fields(q, 4u, 15u), 0.0) * d1 - mn1;
#else
        // qh[32] @16: bit e/32 of qh[e % 32] is element e's fifth bit; qs @48.
        const uint q = ld_aligned(b + 48u + 32u * g + 16u * hf + 4u * c);
        const uint qh = ld_aligned(b + 16u + 16u * hf + 4u * c);
        w[c] = to_float(fields(q, 0u, 15u) | (fields(qh, 2u * g, 1u) << 4), 0.0) * d0 - mn0;
        w[c + 4u] = to_float(fields(q, 4u, 15u) | (fields(qh, 2u * g + 1u, 1u) << 4), 0.0) * d1 - mn1;
#endif
    }
}
#else  // Q6_K
// Element e = 128h + 32k + l: ql[64h + l + 32(k & 1)] (low nibble k < 2, high
// k >= 2), bits 2k of qh[32h + l], scale sc[8h + l / 16 + 2k]. Part
// pi = 4h + 2kp + lh covers l in [16lh, 16lh + 16) for k = kp (w[0..3], low
// nibbles) and k = kp + 2 (w[4..7], high nibbles): ql bytes 16pi..16pi + 15.
uint mv_x(uint pi, uint j) {
    const uint h = pi >> 2, kp = (pi >> 1) & 1u, lh = pi & 1u;
    return 128u * h + 32u * kp + 16u * lh + (j < 4u ? 4u * j : 64u + 4u * (j - 4u));
}
void mv_part(uint b, uint pi, out vec4 w[MV_NV]) {
    const uint h = pi >> 2, kp = (pi >> 1) & 1u, lh = pi & 1u;
    const float d = w_f16(b + 208u);
    const float d0 = d * float(w_i8(b + 192u + 8u * h + lh + 2u * kp));
    const float d1 = d * float(w_i8(b + 196u + 8u * h + lh + 2u * kp));
    for (uint c = 0u; c < 4u; ++c) {
        const uint ql = ld_any(b + 16u * pi + 4u * c);
        const uint qh = ld_any(b + 128u + 32u * h + 16u * lh + 4u * c);
        w[c] = to_float(fields(ql, 0u, 15u) | (fields(qh, 2u * kp, 3u) << 4), 32.0) * d0;
        w[c + 4u] = to_float(fields(ql, 4u, 15u) | (fields(qh, 2u * kp + 4u, 3u) << 4), 32.0) * d1;
    }
}
#endif
#endif

#ifdef USE_INT_DOT
// The 32-element formats against q8 activations (quantize_q8.comp): a block's
// quants as packed int8, element 4j + i in byte i of q[j], and dm such that
//   sum_i w_i x_i = dm.x * d_x * dot(q, q_x) + dm.y * d_x * sum(q_x).
#extension GL_EXT_spirv_intrinsics : require
// OpSDot (SPV_KHR_integer_dot_product) on four packed signed bytes; glslc
// here predates GL_EXT_integer_dot_product, so the instruction is named by
// its opcode: capabilities DotProduct and DotProductInput4x8BitPacked.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal int packed_vector_format);
int sdot(uint a, uint b) { return sdot4x8(a, b, 0); }  // PackedVectorFormat4x8Bit

// Bits s..s+3 of qh moved to bit 4 of each byte (the fifth bit of Q5 quants).
uint high_bits(uint qh, uint s) {
    const uint b = qh >> s;
    return ((b & 1u) << 4) | ((b & 2u) << 11) | ((b & 4u) << 18) | ((b & 8u) << 25);
}
#if defined(WTYPE_Q4_0)
void mv_block_q8(uint b, out uint q[8], out vec2 dm) {
    const float d = w_f16(b);
    dm = vec2(d, -8.0 * d);
    for (uint k = 0u; k < 4u; ++k) {
        const uint w = ld_any(b + 2u + 4u * k);
        q[k] = w & 0x0F0F0F0Fu;
        q[k + 4u] = (w >> 4) & 0x0F0F0F0Fu;
    }
}
#elif defined(WTYPE_Q4_1)
void mv_block_q8(uint b, out uint q[8], out vec2 dm) {
    dm = unpackHalf2x16(ld_aligned(b));
    for (uint k = 0u; k < 4u; ++k) {
        const uint w = ld_aligned(b + 4u + 4u * k);
        q[k] = w & 0x0F0F0F0Fu;
        q[k + 4u] = (w >> 4) & 0x0F0F0F0Fu;
    }
}
#elif defined(WTYPE_Q5_0)
void mv_block_q8(uint b, out uint q[8], out vec2 dm) {
    const float d = w_f16(b);
    dm = vec2(d, -16.0 * d);
    const uint qh = ld_any(b + 2u);
    for (uint k = 0u; k < 4u; ++k) {
        const uint w = ld_any(b + 6u + 4u * k);
        q[k] = (w & 0x0F0F0F0Fu) | high_bits(qh, 4u * k);
        q[k + 4u] = ((w >> 4) & 0x0F0F0F0Fu) | high_bits(qh, 16u + 4u * k);
    }
}
#elif defined(WTYPE_Q5_1)
void mv_block_q8(uint b, out uint q[8], out vec2 dm) {
    dm = unpackHalf2x16(ld_aligned(b));
    const uint qh = ld_aligned(b + 4u);
    for (uint k = 0u; k < 4u; ++k) {
        const uint w = ld_aligned(b + 8u + 4u * k);
        q[k] = (w & 0x0F0F0F0Fu) | high_bits(qh, 4u * k);
        q[k + 4u] = ((w >> 4) & 0x0F0F0F0Fu) | high_bits(qh, 16u + 4u * k);
    }
}
#elif defined(WTYPE_Q8_0)
void mv_block_q8(uint b, out uint q[8], out vec2 dm) {
    dm = vec2(w_f16(b), 0.0);
    for (uint k = 0u; k < 8u; ++k) q[k] = ld_any(b + 2u + 4u * k);
}
#else
#error "USE_INT_DOT is for the 32-element formats"
#endif
#endif
