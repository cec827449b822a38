#pragma once
// The per-tensor types llama-quantize picks for a Llama model in each of its
// "ftype" mixes (llama.cpp src/llama-quant.cpp, llama_tensor_get_type), so a
// file kiln generates holds the same types as the file of that name on the hub.
#include <cstdint>
#include <span>
#include <string_view>

#include "formats/ggml_type.h"

namespace kiln {

struct QuantMix {
    const char* name;      // as `kiln random-model --type` takes it: "q4_k_m"
    uint32_t file_type;    // general.file_type: llama.cpp's enum llama_ftype
    GgmlType base;         // the type of every matrix the mix does not single out
};

// Every mix, and the lookup by name (case-insensitive; "q4_k" is Q4_K_M, as in
// llama-quantize). nullptr when unknown.
std::span<const QuantMix> all_quant_mixes();
const QuantMix* find_quant_mix(std::string_view name);

enum class LlamaTensor {
    TokenEmbd, Output, OutputNorm,
    AttnNorm, AttnQ, AttnK, AttnV, AttnOutput,
    FfnNorm, FfnGate, FfnUp, FfnDown,
};

// The type of `tensor` (in layer `layer` of n_layer; ignored for the
// tensors outside the blocks) in `mix`. Norms are always F32.
GgmlType quant_mix_type(const QuantMix& mix, LlamaTensor tensor, int layer, int n_layer);

}  // namespace kiln
