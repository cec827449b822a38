#pragma once
// Activations rounded to 8-bit blocks right before an integer dot product with
// a quantized weight, the way llama.cpp does it (ggml's vec_dot_type), so that
// kiln's logits on quantized files round like the reference's:
//   Q4_0, Q5_0, Q8_0 weights  x Q8_0 activations (32 int8 + a scale),
//   Q4_1, Q5_1 weights        x Q8_1 activations (Q8_0 + the block's scaled sum,
//                                which folds the weight's min into one multiply),
//   Q2_K .. Q6_K weights      x Q8_K activations (256 int8, a float scale, and
//                                the sums of each 16, which fold in the sub-block mins).
//
// One token's quantized row is laid out for SIMD loads rather than as ggml's
// interleaved blocks (the values are the same):
//   Q8_0, Q8_1: qs[n] int8 | d[n/32] float | s[n/32] float | sum[n/32] int32
//   Q8_K:       qs[n] int8 | d[n/256] float | bsums[n/16] int16
// x[i] ~= d[i/32] * qs[i]; sum[b] is the exact sum of block b's qs (kernels use
// it to offset unsigned weights: (q - 8) . x = q . x - 8 * sum); s[b] = d[b] * sum[b]
// as llama.cpp keeps it for Q4_1/Q5_1, rounded to fp16. For Q8_0/Q8_1, d and s
// hold the float value of the fp16 numbers llama.cpp stores. Both layouts are the
// same: the two names follow ggml's vec_dot_type, which differ in what they store.
#include <cstddef>
#include <cstdint>

#include "formats/ggml_type.h"

namespace kiln::cpu {

enum class ActQuant : uint8_t { Q8_0 = 0, Q8_1 = 1, Q8_K = 2 };
inline constexpr int kActQuantCount = 3;

inline constexpr int64_t act_block_size(ActQuant a) { return a == ActQuant::Q8_K ? 256 : 32; }

// Bytes of one quantized row of n values (n a multiple of the block size),
// rounded up to 64 so consecutive token rows stay cache-line aligned.
inline constexpr size_t q8_row_bytes(ActQuant a, int64_t n) {
    const size_t nb = size_t(n / act_block_size(a));
    size_t bytes = size_t(n) + nb * sizeof(float);
    if (a == ActQuant::Q8_K)
        bytes += size_t(n / 16) * sizeof(int16_t);
    else
        bytes += nb * (sizeof(float) + sizeof(int32_t));
    return (bytes + 63) / 64 * 64;
}

// Read-side view of one quantized row (the offsets follow the layout above).
struct Q8RowView {
    const int8_t* qs;
    const float* d;
    const float* s;         // Q8_0/Q8_1
    const int32_t* sum;     // Q8_0/Q8_1
    const int16_t* bsums;   // Q8_K
};
inline Q8RowView q8_row_view(ActQuant a, const uint8_t* row, int64_t n) {
    const int64_t nb = n / act_block_size(a);
    const auto* d = reinterpret_cast<const float*>(row + n);
    const auto* qs = reinterpret_cast<const int8_t*>(row);
    if (a == ActQuant::Q8_K) return {qs, d, nullptr, nullptr, reinterpret_cast<const int16_t*>(d + nb)};
    return {qs, d, d + nb, reinterpret_cast<const int32_t*>(d + 2 * nb), nullptr};
}

// Rounds n floats (a multiple of the block size) into one quantized row.
using QuantizeActFn = void (*)(const float* x, int64_t n, uint8_t* row);

// y[t * ldy + r] = dot(weight row r, activation row t) for r < n_rows, t < n_tok:
// weight rows w_stride bytes apart, quantized activation rows x_stride bytes apart,
// n_in values each. A kernel may block rows and tokens however suits its ISA.
using QuantGemmFn = void (*)(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* xq, size_t x_stride,
                             int64_t n_tok, int64_t n_in, float* y, int64_t ldy);

// The weight types with an integer dot product, and the activation blocks each
// pairs with; the slot indexes QuantKernels::gemm.
struct IntDotType {
    GgmlType type;
    ActQuant act;
};
inline constexpr IntDotType kIntDotTypes[] = {
    {GgmlType::Q4_0, ActQuant::Q8_0}, {GgmlType::Q4_1, ActQuant::Q8_1}, {GgmlType::Q5_0, ActQuant::Q8_0},
    {GgmlType::Q5_1, ActQuant::Q8_1}, {GgmlType::Q8_0, ActQuant::Q8_0}, {GgmlType::Q2_K, ActQuant::Q8_K},
    {GgmlType::Q3_K, ActQuant::Q8_K}, {GgmlType::Q4_K, ActQuant::Q8_K}, {GgmlType::Q5_K, ActQuant::Q8_K},
    {GgmlType::Q6_K, ActQuant::Q8_K},
};
inline constexpr int kIntDotTypeCount = int(sizeof(kIntDotTypes) / sizeof(kIntDotTypes[0]));

// Slot of `t` in kIntDotTypes, or -1 when its weights take the float path.
inline constexpr int int_dot_slot(GgmlType t) {
    for (int i = 0; i < kIntDotTypeCount; ++i)
        if (kIntDotTypes[i].type == t) return i;
    return -1;
}

// One ISA's integer matmul kernels: an activation quantizer per ActQuant and a
// tile kernel per kIntDotTypes slot.
struct QuantKernels {
    QuantizeActFn quantize_act[kActQuantCount];
    QuantGemmFn gemm[kIntDotTypeCount];
    // Q4_0 weights repacked at upload (q4_0_x16.h) x Q8_0 activations, or nullptr
    // where the plain layout serves (scalar, NEON). Its w is the repacked tensor
    // at a group boundary and w_stride the bytes of one group of 16 rows.
    QuantGemmFn q4_0_x16 = nullptr;
};

}  // namespace kiln::cpu
