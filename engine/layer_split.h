#pragma once
// How -ngl splits a model's layers between the CPU and a GPU backend; one rule
// for every GPU backend (CUDA, Vulkan).
#include <cstdint>
#include <string>

#include "formats/gguf.h"
#include "models/model.h"

namespace kiln {

// The file's <arch>.block_count; throws ModelError naming `path` when it is
// missing or absurd (layers cannot be placed without it).
int64_t layer_count(const GgufFile& file, const std::string& path);

// The last n_gpu of n_layer layers and the output head on `gpu`, the embedding
// and the first layers on `cpu` (0 < n_gpu < n_layer).
Placement split_layers(Backend* cpu, Backend* gpu, int64_t n_layer, int64_t n_gpu);

}  // namespace kiln
