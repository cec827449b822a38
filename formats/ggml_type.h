#pragma once
// Tensor element types as numbered in GGUF files (ggml's `enum ggml_type`).
// The numbers are part of the file format: never renumber.
#include <cstdint>

namespace kiln {

enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    // 4 and 5 were Q4_2 / Q4_3, removed from the format long ago.
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,  // activation block for Q4_1/Q5_1 dot products
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,  // activation block for K-quant dot products
    BF16 = 30,
};

}  // namespace kiln
