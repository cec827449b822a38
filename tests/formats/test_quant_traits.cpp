// The traits table: lookups, sizes and the byte-count arithmetic.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "formats/quant_traits.h"

using namespace kiln;

TEST_CASE("quant traits: sizes of every type as GGUF stores them") {
    struct Row { GgmlType t; const char* name; int64_t bs; size_t bytes; bool quantized; };
    const Row rows[] = {
        {GgmlType::F32, "f32", 1, 4, false},    {GgmlType::F16, "f16", 1, 2, false},
        {GgmlType::Q4_0, "q4_0", 32, 18, true}, {GgmlType::Q4_1, "q4_1", 32, 20, true},
        {GgmlType::Q5_0, "q5_0", 32, 22, true}, {GgmlType::Q5_1, "q5_1", 32, 24, true},
        {GgmlType::Q8_0, "q8_0", 32, 34, true}, {GgmlType::Q8_1, "q8_1", 32, 36, true},
        {GgmlType::Q2_K, "q2_K", 256, 84, true}, {GgmlType::Q3_K, "q3_K", 256, 110, true},
        {GgmlType::Q4_K, "q4_K", 256, 144, true}, {GgmlType::Q5_K, "q5_K", 256, 176, true},
        {GgmlType::Q6_K, "q6_K", 256, 210, true}, {GgmlType::Q8_K, "q8_K", 256, 292, true},
        {GgmlType::BF16, "bf16", 1, 2, false},
    };
    REQUIRE(all_quant_traits().size() == std::size(rows));
    for (size_t i = 0; i < std::size(rows); ++i) {
        const QuantTraits& t = all_quant_traits()[i];
        const std::string name = rows[i].name;
        CAPTURE(name);
        CHECK(t.type == rows[i].t);
        CHECK(std::string(t.name) == rows[i].name);
        CHECK(t.block_size == rows[i].bs);
        CHECK(t.block_bytes == rows[i].bytes);
        CHECK(t.is_quantized == rows[i].quantized);
        CHECK(static_cast<bool>(t.dequantize));
        CHECK(static_cast<bool>(t.quantize));
        CHECK(&quant_traits(rows[i].t) == &t);
        CHECK(find_quant_traits(uint32_t(rows[i].t)) == &t);
    }
}

TEST_CASE("find_quant_traits rejects unknown numbers") {
    for (uint32_t raw : {4u, 5u, 16u, 29u, 31u, 39u, 1000u, 0xFFFFFFFFu}) CHECK(find_quant_traits(raw) == nullptr);
    CHECK_THROWS_AS(quant_traits(GgmlType(4)), std::invalid_argument);
}

TEST_CASE("find_quant_traits_by_name is case-insensitive and exact") {
    CHECK(find_quant_traits_by_name("Q4_K") == &quant_traits(GgmlType::Q4_K));
    CHECK(find_quant_traits_by_name("q4_k") == &quant_traits(GgmlType::Q4_K));
    CHECK(find_quant_traits_by_name("F16") == &quant_traits(GgmlType::F16));
    CHECK(find_quant_traits_by_name("bf16") == &quant_traits(GgmlType::BF16));
    CHECK(find_quant_traits_by_name("q8_0") == &quant_traits(GgmlType::Q8_0));
    CHECK(find_quant_traits_by_name("q4") == nullptr);
    CHECK(find_quant_traits_by_name("q4_K_M") == nullptr);
    CHECK(find_quant_traits_by_name("") == nullptr);
    CHECK(find_quant_traits_by_name(nullptr) == nullptr);
}

TEST_CASE("tensor_bytes checks the block multiple and overflow") {
    CHECK(tensor_bytes(GgmlType::F32, 10) == 40u);
    CHECK(tensor_bytes(GgmlType::F16, 0) == 0u);
    CHECK(tensor_bytes(GgmlType::Q4_0, 64) == 36u);
    CHECK(tensor_bytes(GgmlType::Q4_K, 288 * 256) == 288u * 144u);
    CHECK_FALSE(tensor_bytes(GgmlType::Q4_0, 33).has_value());
    CHECK_FALSE(tensor_bytes(GgmlType::Q6_K, 288).has_value());
    CHECK_FALSE(tensor_bytes(GgmlType(4), 32).has_value());
    const uint64_t huge = std::numeric_limits<uint64_t>::max();
    CHECK_FALSE(tensor_bytes(GgmlType::F32, huge / 2).has_value());
    CHECK(tensor_bytes(GgmlType::F32, huge / 4) == (huge / 4) * 4);
    CHECK_FALSE(tensor_bytes(GgmlType::Q8_0, (huge / 32) * 32).has_value());
}

TEST_CASE("dequantize/quantize wrappers refuse sizes that are not whole blocks") {
    const std::vector<float> x(48, 1.0f);
    CHECK_THROWS_AS(quantize(GgmlType::Q4_0, x.data(), 48), std::invalid_argument);
    CHECK_THROWS_AS(dequantize(GgmlType::Q4_K, x.data(), 48), std::invalid_argument);
    CHECK_THROWS_AS(quantize(GgmlType::F32, x.data(), -1), std::invalid_argument);
    CHECK(quantize(GgmlType::Q4_0, x.data(), 0).empty());
    CHECK(quantize(GgmlType::Q4_0, x.data(), 32).size() == 18);
}
