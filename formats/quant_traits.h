#pragma once
// The one table describing every tensor element type kiln understands.
// Everything else (GGUF validation, kernels, tools) reads sizes and the
// reference conversions from here instead of switching on the type.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "formats/ggml_type.h"

namespace kiln {

// Reference (scalar) conversions. `n` is a multiple of block_size.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);

struct QuantTraits {
    GgmlType type;
    const char* name;      // as llama.cpp prints it: "q4_K", "f16", ...
    int64_t block_size;    // elements per block (1 for F32/F16/BF16)
    size_t block_bytes;    // bytes per block
    bool is_quantized;     // false for F32, F16, BF16
    DequantizeFn dequantize;
    QuantizeFn quantize;   // round-to-nearest with llama.cpp's scale choice
};

// nullptr when `raw` is not a type kiln supports (e.g. read from a bad file).
const QuantTraits* find_quant_traits(uint32_t raw);
// For a type known to be valid.
const QuantTraits& quant_traits(GgmlType type);
// Every supported type, in enum order.
std::span<const QuantTraits> all_quant_traits();
// Case-insensitive lookup by name ("Q4_K", "q4_k", "f16"); nullptr when unknown.
const QuantTraits* find_quant_traits_by_name(const char* name);

// Bytes of `n_elements` elements of `type`, or nullopt when n_elements is
// not a multiple of the block size or the byte count overflows.
std::optional<uint64_t> tensor_bytes(GgmlType type, uint64_t n_elements);

// Convenience wrappers over the traits for whole buffers.
std::vector<float> dequantize(GgmlType type, const void* src, int64_t n);
std::vector<uint8_t> quantize(GgmlType type, const float* src, int64_t n);

}  // namespace kiln
