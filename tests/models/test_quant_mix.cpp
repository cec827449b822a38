// The llama-quantize mixes: per-tensor types as llama.cpp picks them, checked
// by hand for 32 layers and against a file llama-quantize wrote.
#include <doctest/doctest.h>

#include <set>
#include <utility>
#include <string>

#include "formats/gguf.h"
#include "formats/quant_traits.h"
#include "llama_tensor_role.h"
#include "models/quant_mix.h"
#include "test_paths.h"

using namespace kiln;

namespace {

const QuantMix& mix(const char* name) {
    const QuantMix* m = find_quant_mix(name);
    REQUIRE(m != nullptr);
    return *m;
}

std::set<int> layers_of(const QuantMix& m, LlamaTensor t, GgmlType type, int n_layer) {
    std::set<int> layers;
    for (int il = 0; il < n_layer; ++il)
        if (quant_mix_type(m, t, il, n_layer) == type) layers.insert(il);
    return layers;
}

}  // namespace

TEST_CASE("quant mix: names, aliases and llama.cpp's file_type numbers") {
    CHECK(mix("q4_0").file_type == 2);
    CHECK(mix("q8_0").file_type == 7);
    CHECK(mix("q4_k_s").file_type == 14);
    CHECK(mix("q4_k_m").file_type == 15);
    CHECK(mix("f16").file_type == 1);
    CHECK(&mix("Q4_K") == &mix("q4_k_m"));  // llama-quantize's alias
    CHECK(&mix("Q4_K_M") == &mix("q4_k_m"));
    CHECK(find_quant_mix("q3_k_m") == nullptr);
    CHECK(find_quant_mix("") == nullptr);
    CHECK(mix("q5_k_m").file_type == 17);
    CHECK(&mix("Q5_K") == &mix("q5_k_m"));
    CHECK(all_quant_mixes().size() == 6);
}

TEST_CASE("quant mix: Q4_K_M and Q5_K_M on 32 layers give attn_v and ffn_down Q6_K on llama.cpp's use_more_bits layers") {
    for (const auto& [name, base] : {std::pair{"q4_k_m", GgmlType::Q4_K}, std::pair{"q5_k_m", GgmlType::Q5_K}}) {
        CAPTURE(name);
        const QuantMix& m = mix(name);
        CHECK(m.base == base);
        // First and last eighth (0-3, 28-31) and every third layer in between from 6.
        const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
        CHECK(layers_of(m, LlamaTensor::AttnV, GgmlType::Q6_K, 32) == more);
        CHECK(layers_of(m, LlamaTensor::FfnDown, GgmlType::Q6_K, 32) == more);
        CHECK(layers_of(m, LlamaTensor::AttnV, base, 32).size() == 16);
        for (LlamaTensor t : {LlamaTensor::AttnQ, LlamaTensor::AttnK, LlamaTensor::AttnOutput, LlamaTensor::FfnGate,
                              LlamaTensor::FfnUp})
            CHECK(layers_of(m, t, base, 32).size() == 32);
        CHECK(quant_mix_type(m, LlamaTensor::Output, 0, 32) == GgmlType::Q6_K);
        CHECK(quant_mix_type(m, LlamaTensor::TokenEmbd, 0, 32) == base);
        CHECK(quant_mix_type(m, LlamaTensor::AttnNorm, 5, 32) == GgmlType::F32);
    }
}

TEST_CASE("quant mix: Q4_K_S raises the first four attn_v and the first eighth of ffn_down to Q5_K") {
    const QuantMix& m = mix("q4_k_s");
    CHECK(layers_of(m, LlamaTensor::AttnV, GgmlType::Q5_K, 32) == std::set<int>{0, 1, 2, 3});
    CHECK(layers_of(m, LlamaTensor::FfnDown, GgmlType::Q5_K, 32) == std::set<int>{0, 1, 2, 3});
    CHECK(layers_of(m, LlamaTensor::FfnDown, GgmlType::Q5_K, 16) == std::set<int>{0, 1});
    CHECK(quant_mix_type(m, LlamaTensor::Output, 0, 32) == GgmlType::Q6_K);
}

TEST_CASE("quant mix: Q4_0, Q8_0 and F16 are uniform but for the output head and the norms") {
    for (const char* name : {"q4_0", "q8_0", "f16"}) {
        CAPTURE(name);
        const QuantMix& m = mix(name);
        for (LlamaTensor t : {LlamaTensor::TokenEmbd, LlamaTensor::AttnQ, LlamaTensor::AttnK, LlamaTensor::AttnV,
                              LlamaTensor::AttnOutput, LlamaTensor::FfnGate, LlamaTensor::FfnUp, LlamaTensor::FfnDown})
            for (int il : {0, 3, 31}) CHECK(quant_mix_type(m, t, il, 32) == m.base);
        for (LlamaTensor t : {LlamaTensor::AttnNorm, LlamaTensor::FfnNorm, LlamaTensor::OutputNorm})
            CHECK(quant_mix_type(m, t, 0, 32) == GgmlType::F32);
    }
    CHECK(quant_mix_type(mix("q4_0"), LlamaTensor::Output, 0, 32) == GgmlType::Q6_K);
    CHECK(quant_mix_type(mix("q8_0"), LlamaTensor::Output, 0, 32) == GgmlType::Q8_0);
    CHECK(quant_mix_type(mix("f16"), LlamaTensor::Output, 0, 32) == GgmlType::F16);
}

TEST_CASE("quant mix: Q4_K_M and Q5_K_M types match files llama-quantize wrote (kiln-test-gqa-*, 5 layers)") {
    for (const char* name : {"q4_k_m", "q5_k_m"}) {
        CAPTURE(name);
        const GgufFile f = GgufFile::open(test::model_path(std::string("kiln-test-gqa-") + name + ".gguf"));
        const int n_layer = int(*f.get_int("llama.block_count"));
        REQUIRE(n_layer == 5);
        int q6 = 0;
        for (const GgufTensorInfo& t : f.tensors()) {
            CAPTURE(t.name);
            const auto role = test::llama_tensor_role(t.name);
            REQUIRE(role.has_value());
            const GgmlType want = quant_mix_type(mix(name), role->first, role->second, n_layer);
            CHECK(quant_traits(want).name == std::string(quant_traits(t.type).name));
            q6 += t.type == GgmlType::Q6_K;
        }
        CHECK(q6 == 5);  // output + attn_v and ffn_down of layers 2 and 4
    }
}
