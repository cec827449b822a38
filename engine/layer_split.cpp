#include "engine/layer_split.h"

#include "models/hparams.h"

namespace kiln {

int64_t layer_count(const GgufFile& file, const std::string& path) {
    const auto arch = file.get_string("general.architecture");
    const auto n_layer = arch ? file.get_uint(*arch + ".block_count") : std::nullopt;
    if (!n_layer || *n_layer == 0 || *n_layer > 4096)
        throw ModelError(path + ": no usable <arch>.block_count in the metadata; cannot place layers on the GPU");
    return int64_t(*n_layer);
}

Placement split_layers(Backend* cpu, Backend* gpu, int64_t n_layer, int64_t n_gpu) {
    Placement p;
    p.input = cpu;
    p.output = gpu;
    for (int64_t il = 0; il < n_layer; ++il) p.layers.push_back(il < n_layer - n_gpu ? cpu : gpu);
    return p;
}

}  // namespace kiln
