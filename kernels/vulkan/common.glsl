// Shared by every kiln compute shader.
// Host-side small inputs (token ids, positions, rope tables, cell masks) come
// through one "arena" buffer of 32-bit words; ops receive word offsets into it
// and into their activation buffers as push constants, so every descriptor
// binds a whole buffer (no minStorageBufferOffsetAlignment constraints).

// f32 -> f16 bits, round to nearest even (as formats/fp16 does on the host, so a
// KV cache written here holds the same bits as the CPU backend's).
uint f32_to_f16_bits(float f) {
    const uint x = floatBitsToUint(f);
    const uint sign = (x >> 16) & 0x8000u;
    const uint ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u);
    if (ax >= 0x477FF000u) return sign | 0x7C00u;  // rounds past 65504
    if (ax < 0x38800000u) {                        // below 2^-14: a subnormal half (or zero)
        if (ax < 0x33000000u) return sign;         // below 2^-25: rounds to zero
        const uint e = ax >> 23;
        const uint m = (ax & 0x7FFFFFu) | 0x800000u;
        const uint shift = 126u - e;               // to units of 2^-24
        uint r = m >> shift;
        const uint rem = m & ((1u << shift) - 1u);
        const uint halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (r & 1u) != 0u)) r += 1u;
        return sign | r;
    }
    const uint rb = ax - 0x38000000u;  // exponent bias 127 -> 15
    uint h = rb >> 13;
    const uint rem = rb & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) h += 1u;
    return sign | h;
}

