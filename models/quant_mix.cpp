#include "models/quant_mix.h"

#include <cctype>

namespace kiln {

namespace {

constexpr QuantMix kMixes[] = {
    {"f16", 1, GgmlType::F16},      // LLAMA_FTYPE_MOSTLY_F16
    {"q4_0", 2, GgmlType::Q4_0},    // LLAMA_FTYPE_MOSTLY_Q4_0
    {"q8_0", 7, GgmlType::Q8_0},    // LLAMA_FTYPE_MOSTLY_Q8_0
    {"q4_k_s", 14, GgmlType::Q4_K}, // LLAMA_FTYPE_MOSTLY_Q4_K_S
    {"q4_k_m", 15, GgmlType::Q4_K}, // LLAMA_FTYPE_MOSTLY_Q4_K_M
    {"q5_k_m", 17, GgmlType::Q5_K}, // LLAMA_FTYPE_MOSTLY_Q5_K_M
};

bool same_name(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every
// third one in between get more bits in the _M mixes.
bool use_more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

}  // namespace

std::span<const QuantMix> all_quant_mixes() { return kMixes; }

const QuantMix* find_quant_mix(std::string_view name) {
    if (same_name(name, "q4_k")) name = "q4_k_m";
    if (same_name(name, "q5_k")) name = "q5_k_m";
    for (const auto& m : kMixes)
        if (same_name(name, m.name)) return &m;
    return nullptr;
}

GgmlType quant_mix_type(const QuantMix& mix, LlamaTensor tensor, int layer, int n_layer) {
    const bool k_m = mix.file_type == 15 || mix.file_type == 17, k_s = mix.file_type == 14;
    switch (tensor) {
        case LlamaTensor::OutputNorm:
        case LlamaTensor::AttnNorm:
        case LlamaTensor::FfnNorm: return GgmlType::F32;
        // Output: Q6_K unless the mix is Q8_0 or unquantized.
        case LlamaTensor::Output:
            return mix.base == GgmlType::F16 || mix.base == GgmlType::Q8_0 ? mix.base : GgmlType::Q6_K;
        case LlamaTensor::AttnV:
            if (k_m && use_more_bits(layer, n_layer)) return GgmlType::Q6_K;
            if (k_s && layer < 4) return GgmlType::Q5_K;
            return mix.base;
        case LlamaTensor::FfnDown:
            if (k_m && use_more_bits(layer, n_layer)) return GgmlType::Q6_K;
            if (k_s && layer < n_layer / 8) return GgmlType::Q5_K;
            return mix.base;
        // llama-quantize keeps these at the base type for a dense (non-expert) Llama,
        // except 70B-sized models, whose attn_v it raises Q4_K -> Q5_K (not followed here).
        case LlamaTensor::TokenEmbd:
        case LlamaTensor::AttnQ:
        case LlamaTensor::AttnK:
        case LlamaTensor::AttnOutput:
        case LlamaTensor::FfnGate:
        case LlamaTensor::FfnUp: return mix.base;
    }
    return mix.base;
}

}  // namespace kiln
