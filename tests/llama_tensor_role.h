#pragma once
// Test helper: the LlamaTensor role and layer of a llama tensor name
// ("blk.3.attn_v.weight" -> AttnV, 3), to ask quant_mix_type about a file's tensors.
#include <optional>
#include <string>
#include <utility>

#include "models/quant_mix.h"

namespace kiln::test {

inline std::optional<std::pair<LlamaTensor, int>> llama_tensor_role(const std::string& name) {
    static const std::pair<const char*, LlamaTensor> kTop[] = {
        {"token_embd.weight", LlamaTensor::TokenEmbd},
        {"output.weight", LlamaTensor::Output},
        {"output_norm.weight", LlamaTensor::OutputNorm},
    };
    static const std::pair<const char*, LlamaTensor> kBlock[] = {
        {"attn_norm.weight", LlamaTensor::AttnNorm}, {"attn_q.weight", LlamaTensor::AttnQ},
        {"attn_k.weight", LlamaTensor::AttnK},       {"attn_v.weight", LlamaTensor::AttnV},
        {"attn_output.weight", LlamaTensor::AttnOutput}, {"ffn_norm.weight", LlamaTensor::FfnNorm},
        {"ffn_gate.weight", LlamaTensor::FfnGate},   {"ffn_up.weight", LlamaTensor::FfnUp},
        {"ffn_down.weight", LlamaTensor::FfnDown},
    };
    for (const auto& [n, role] : kTop)
        if (name == n) return std::pair{role, 0};
    if (name.rfind("blk.", 0) != 0) return std::nullopt;
    const size_t dot = name.find('.', 4);
    if (dot == std::string::npos) return std::nullopt;
    const int layer = std::stoi(name.substr(4, dot - 4));
    for (const auto& [n, role] : kBlock)
        if (name.compare(dot + 1, std::string::npos, n) == 0) return std::pair{role, layer};
    return std::nullopt;
}

}  // namespace kiln::test
