// Four consecutive weights at once, for the tiled matmul's tile loaders
// (include after dequant.glsl, which picks the type and reads the bytes):
//   vec4 dq4(uint blk, uint j)  // elements j..j+3 of the block at byte blk
// with j % 4 == 0; for the float types (BLOCK_SIZE 1) blk is the first
// element's byte and j is 0. Four consecutive elements of every format share
// one scale and sit in four consecutive bytes (or nibbles, or bit fields of
// four consecutive bytes), so each reads one 32-bit word of quants instead of
// four bytes one at a time. The formulas are dq()'s (dequant.glsl), lane by lane.

// 32 bits at an even byte offset: one word when aligned, else the halves of two
// (Q4_0 blocks are 18 bytes, so quants start 2 bytes off a word boundary).
uint w_u32e(uint b) {
    const uint i = b >> 2;
    return (b & 2u) == 0u ? w_words[i] : (w_words[i] >> 16) | (w_words[i + 1u] << 16);
}

// The four bytes of a word as unsigned values, low byte first.
vec4 bytes4(uint q) { return vec4(float(q & 0xFFu), float((q >> 8) & 0xFFu), float((q >> 16) & 0xFFu), float(q >> 24)); }
// The low bit of each byte of a word, lane by lane.
uvec4 bits4(uint q) { return uvec4(q & 1u, (q >> 8) & 1u, (q >> 16) & 1u, (q >> 24) & 1u); }
uvec4 ubytes4(uint q) { return uvec4(q & 0xFFu, (q >> 8) & 0xFFu, (q >> 16) & 0xFFu, q >> 24); }

#if defined(WTYPE_F32)
vec4 dq4(uint blk, uint j) {
    const uint i = blk >> 2;  // F32 rows start on words
    return vec4(uintBitsToFloat(w_words[i]), uintBitsToFloat(w_words[i + 1u]), uintBitsToFloat(w_words[i + 2u]),
                uintBitsToFloat(w_words[i + 3u]));
}
#elif defined(WTYPE_F16)
vec4 dq4(uint blk, uint j) { return vec4(unpackHalf2x16(w_u32e(blk)), unpackHalf2x16(w_u32e(blk + 4u))); }
#elif defined(WTYPE_BF16)
vec4 dq4(uint blk, uint j) {
    const uint a = w_u32e(blk), b = w_u32e(blk + 4u);
    return vec4(uintBitsToFloat(a << 16), uintBitsToFloat(a & 0xFFFF0000u), uintBitsToFloat(b << 16),
                uintBitsToFloat(b & 0xFFFF0000u));
}
#elif defined(WTYPE_Q4_0)
vec4 dq4(uint blk, uint j) {
    const uint q = (w_u32e(blk + 2u + (j & 15u)) >> (j < 16u ? 0u : 4u)) & 0x0F0F0F0Fu;
    return (bytes4(q) - 8.0) * w_f16(blk);
}
#elif defined(WTYPE_Q4_1)
vec4 dq4(uint blk, uint j) {
    const uint q = (w_u32e(blk + 4u + (j & 15u)) >> (j < 16u ? 0u : 4u)) & 0x0F0F0F0Fu;
    return bytes4(q) * w_f16(blk) + w_f16(blk + 2u);
}
#elif defined(WTYPE_Q5_0)
vec4 dq4(uint blk, uint j) {
    const uint q = (w_u32e(blk + 6u + (j & 15u)) >> (j < 16u ? 0u : 4u)) & 0x0F0F0F0Fu;
    const uint h = (w_u32e(blk + 2u) >> j) & 0xFu;  // fifth bits of elements j..j+3
    const uint h4 = (h & 1u) | ((h & 2u) << 7) | ((h & 4u) << 14) | ((h & 8u) << 21);
    return (bytes4(q | (h4 << 4)) - 16.0) * w_f16(blk);
}
#elif defined(WTYPE_Q5_1)
vec4 dq4(uint blk, uint j) {
    const uint q = (w_u32e(blk + 8u + (j & 15u)) >> (j < 16u ? 0u : 4u)) & 0x0F0F0F0Fu;
    const uint h = (w_u32e(blk + 4u) >> j) & 0xFu;
    const uint h4 = (h & 1u) | ((h & 2u) << 7) | ((h & 4u) << 14) | ((h & 8u) << 21);
    return bytes4(q | (h4 << 4)) * w_f16(blk) + w_f16(blk + 2u);
}
#elif defined(WTYPE_Q8_0)
vec4 dq4(uint blk, uint j) {
    const ivec4 q = ivec4(ubytes4(w_u32e(blk + 2u + j)) << 24) >> 24;  // sign-extend each byte
    return vec4(q) * w_f16(blk);
}
#elif defined(WTYPE_Q2_K)
vec4 dq4(uint blk, uint e) {
    const uint sc = w_u8(blk + e / 16u);
    const uint q = (w_u32e(blk + 16u + (e / 128u) * 32u + e % 32u) >> (2u * ((e % 128u) / 32u))) & 0x03030303u;
    return w_f16(blk + 80u) * float(sc & 0xFu) * bytes4(q) - w_f16(blk + 82u) * float(sc >> 4);
}
#elif defined(WTYPE_Q3_K)
vec4 dq4(uint blk, uint e) {
    const uint s = e / 16u;
    const uint low = s < 8u ? w_u8(blk + 96u + s) & 0xFu : w_u8(blk + 96u + s - 8u) >> 4;
    const uint high = (w_u8(blk + 104u + s % 4u) >> (2u * (s / 4u))) & 3u;
    const int sc = int(low | (high << 4)) - 32;
    const uint q = (w_u32e(blk + 32u + (e / 128u) * 32u + e % 32u) >> (2u * ((e % 128u) / 32u))) & 0x03030303u;
    const uvec4 hb = bits4(w_u32e(blk + e % 32u) >> (e / 32u));
    return (w_f16(blk + 108u) * float(sc)) * (bytes4(q) - 4.0 * vec4(uvec4(1u) - hb));
}
#elif defined(WTYPE_Q4_K)
vec4 dq4(uint blk, uint e) {
    float sc, m;
    scale_min_k4(blk + 4u, e / 32u, sc, m);
    const uint q = (w_u32e(blk + 16u + (e / 64u) * 32u + e % 32u) >> ((e % 64u) < 32u ? 0u : 4u)) & 0x0F0F0F0Fu;
    return (w_f16(blk) * sc) * bytes4(q) - w_f16(blk + 2u) * m;
}
#elif defined(WTYPE_Q5_K)
vec4 dq4(uint blk, uint e) {
    float sc, m;
    scale_min_k4(blk + 4u, e / 32u, sc, m);
    const uint q = (w_u32e(blk + 48u + (e / 64u) * 32u + e % 32u) >> ((e % 64u) < 32u ? 0u : 4u)) & 0x0F0F0F0Fu;
    const uint h = (w_u32e(blk + 16u + e % 32u) >> (e / 32u)) & 0x01010101u;
    return (w_f16(blk) * sc) * bytes4(q | (h << 4)) - w_f16(blk + 2u) * m;
}
#elif defined(WTYPE_Q6_K)
vec4 dq4(uint blk, uint e) {
    const uint h = e / 128u, k = (e % 128u) / 32u, l = e % 32u;
    const uint ql = (w_u32e(blk + 64u * h + l + ((k & 1u) != 0u ? 32u : 0u)) >> (k < 2u ? 0u : 4u)) & 0x0F0F0F0Fu;
    const uint qh = (w_u32e(blk + 128u + 32u * h + l) >> (2u * k)) & 0x03030303u;
    const int sc = w_i8(blk + 192u + 8u * h + l / 16u + 2u * k);
    return w_f16(blk + 208u) * float(sc) * (bytes4(ql | (qh << 4)) - 32.0);
}
#endif
