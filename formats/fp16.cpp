#include "formats/fp16.h"

namespace kiln {

namespace {

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

float float_of(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

}  // namespace

float fp16_to_fp32(fp16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    if (exp == 0x1f)  // inf, or NaN with its payload kept in the top mantissa bits
        return float_of(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return float_of(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return float_of(sign);
    // Subnormal half: mant * 2^-24 is exact in float.
    const float v = float(mant) * 0x1p-24f;
    return float_of(sign | bits_of(v));
}

fp16_t fp32_to_fp16(float f) {
    const uint32_t u = bits_of(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000);
    const uint32_t abs = u & 0x7fffffffu;
    // NaN stays NaN and is made quiet, keeping the top payload bits (as F16C does).
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00 | ((abs >> 13) & 0x3ff));
    // Values at or above 65520 round to infinity.
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00);
    if (abs >= 0x38800000u) {  // normal half (>= 2^-14)
        // Rebias the exponent, then round the 13 dropped bits to nearest even;
        // a carry out of the mantissa correctly bumps the exponent.
        const uint32_t m = abs - (112u << 23);
        const uint32_t rounded = m + 0xfffu + ((m >> 13) & 1);
        return uint16_t(sign | (rounded >> 13));
    }
    if (abs < 0x33000000u) return sign;  // below half of the smallest subnormal (2^-25): zero
    // Subnormal half: shift the full significand into place with round to nearest even.
    const uint32_t exp = abs >> 23;                   // 102..112
    const uint32_t sig = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;                 // 14..24: 2^(exp-127) * sig/2^23 / 2^-24
    const uint32_t half = 1u << (shift - 1);
    const uint32_t rest = sig & ((1u << shift) - 1);
    uint32_t q = sig >> shift;
    if (rest > half || (rest == half && (q & 1))) ++q;  // may carry into the smallest normal: correct
    return uint16_t(sign | q);
}

}  // namespace kiln
