#pragma once
// IEEE half and bfloat16 conversions used by the F16/BF16 tensor types and
// by the scales inside quant blocks. Bit-exact with ggml's conversions
// (round to nearest even, NaN preserved).
#include <cstdint>
#include <cstring>

namespace kiln {

using fp16_t = uint16_t;
using bf16_t = uint16_t;

float fp16_to_fp32(fp16_t h);
fp16_t fp32_to_fp16(float f);

inline float bf16_to_fp32(bf16_t h) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline bf16_t fp32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffff) > 0x7f800000) return bf16_t((bits >> 16) | 64);  // quiet NaN
    return bf16_t((bits + (0x7fff + ((bits >> 16) & 1))) >> 16);
}

}  // namespace kiln
