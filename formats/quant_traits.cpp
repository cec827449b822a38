// The traits table: one row per type, in enum order.
#include "formats/quant_traits.h"

#include <cctype>
#include <stdexcept>
#include <string>

#include "formats/quant_blocks.h"
#include "formats/quant_rows.h"

namespace kiln {

namespace {

constexpr QuantTraits kTraits[] = {
    {GgmlType::F32, "f32", 1, sizeof(float), false, dequantize_row_f32, quantize_row_f32},
    {GgmlType::F16, "f16", 1, sizeof(fp16_t), false, dequantize_row_f16, quantize_row_f16},
    {GgmlType::Q4_0, "q4_0", QK4_0, sizeof(block_q4_0), true, dequantize_row_q4_0, quantize_row_q4_0},
    {GgmlType::Q4_1, "q4_1", QK4_1, sizeof(block_q4_1), true, dequantize_row_q4_1, quantize_row_q4_1},
    {GgmlType::Q5_0, "q5_0", QK5_0, sizeof(block_q5_0), true, dequantize_row_q5_0, quantize_row_q5_0},
    {GgmlType::Q5_1, "q5_1", QK5_1, sizeof(block_q5_1), true, dequantize_row_q5_1, quantize_row_q5_1},
    {GgmlType::Q8_0, "q8_0", QK8_0, sizeof(block_q8_0), true, dequantize_row_q8_0, quantize_row_q8_0},
    {GgmlType::Q8_1, "q8_1", QK8_1, sizeof(block_q8_1), true, dequantize_row_q8_1, quantize_row_q8_1},
    {GgmlType::Q2_K, "q2_K", QK_K, sizeof(block_q2_K), true, dequantize_row_q2_K, quantize_row_q2_K},
    {GgmlType::Q3_K, "q3_K", QK_K, sizeof(block_q3_K), true, dequantize_row_q3_K, quantize_row_q3_K},
    {GgmlType::Q4_K, "q4_K", QK_K, sizeof(block_q4_K), true, dequantize_row_q4_K, quantize_row_q4_K},
    {GgmlType::Q5_K, "q5_K", QK_K, sizeof(block_q5_K), true, dequantize_row_q5_K, quantize_row_q5_K},
    {GgmlType::Q6_K, "q6_K", QK_K, sizeof(block_q6_K), true, dequantize_row_q6_K, quantize_row_q6_K},
    {GgmlType::Q8_K, "q8_K", QK_K, sizeof(block_q8_K), true, dequantize_row_q8_K, quantize_row_q8_K},
    {GgmlType::BF16, "bf16", 1, sizeof(bf16_t), false, dequantize_row_bf16, quantize_row_bf16},
};

bool equal_ignoring_case(const char* a, const char* b) {
    for (; *a && *b; ++a, ++b)
        if (std::tolower(static_cast<unsigned char>(*a)) != std::tolower(static_cast<unsigned char>(*b))) return false;
    return *a == *b;
}

}  // namespace

const QuantTraits* find_quant_traits(uint32_t raw) {
    for (const QuantTraits& t : kTraits)
        if (uint32_t(t.type) == raw) return &t;
    return nullptr;
}

const QuantTraits& quant_traits(GgmlType type) {
    const QuantTraits* t = find_quant_traits(uint32_t(type));
    // Only reachable through a cast of an unchecked number: a programming error.
    if (!t) throw std::invalid_argument("quant_traits: unsupported ggml type " + std::to_string(uint32_t(type)));
    return *t;
}

std::span<const QuantTraits> all_quant_traits() { return kTraits; }

const QuantTraits* find_quant_traits_by_name(const char* name) {
    if (!name) return nullptr;
    for (const QuantTraits& t : kTraits)
        if (equal_ignoring_case(t.name, name)) return &t;
    return nullptr;
}

std::optional<uint64_t> tensor_bytes(GgmlType type, uint64_t n_elements) {
    const QuantTraits* t = find_quant_traits(uint32_t(type));
    if (!t) return std::nullopt;
    const uint64_t bs = uint64_t(t->block_size);
    if (n_elements % bs != 0) return std::nullopt;
    uint64_t bytes;
    if (__builtin_mul_overflow(n_elements / bs, uint64_t(t->block_bytes), &bytes)) return std::nullopt;
    return bytes;
}

namespace {

const QuantTraits& checked_traits(GgmlType type, int64_t n, const char* what) {
    const QuantTraits& t = quant_traits(type);
    if (n < 0 || n % t.block_size != 0)
        throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) + " elements is not a multiple of " +
                                    t.name + "'s block size " + std::to_string(t.block_size));
    return t;
}

}  // namespace

std::vector<float> dequantize(GgmlType type, const void* src, int64_t n) {
    const QuantTraits& t = checked_traits(type, n, "dequantize");
    std::vector<float> out(static_cast<size_t>(n));
    if (n > 0) t.dequantize(src, out.data(), n);
    return out;
}

std::vector<uint8_t> quantize(GgmlType type, const float* src, int64_t n) {
    const QuantTraits& t = checked_traits(type, n, "quantize");
    std::vector<uint8_t> out(static_cast<size_t>(n / t.block_size) * t.block_bytes);
    if (n > 0) t.quantize(src, out.data(), n);
    return out;
}

}  // namespace kiln
