#pragma once
// Where a model's layers go when it is loaded with --backend cuda: all of them
// on the GPU (-ngl -1 or >= n_layer), or the last N on the GPU with the output
// head and the rest (with the token embedding) on the CPU. Checks free GPU
// memory first and says what fits instead of failing half-way through upload.
#ifdef KILN_HAVE_CUDA
#include <memory>
#include <string>

#include "engine/context.h"
#include "formats/gguf.h"
#include "models/model.h"

namespace kiln {

struct CudaPlacement {
    std::unique_ptr<Backend> gpu;
    std::unique_ptr<Backend> cpu;  // null when every layer is on the GPU
    Placement placement;
    std::string summary;  // for Model::placement_summary()
};

// Throws ModelError when the file lacks its layer count or the requested
// layers do not fit in the GPU's free memory (naming the -ngl that would).
// With fit_to_memory, places the most layers that fit instead, and returns
// no GPU backend (gpu == nullptr) when none does.
CudaPlacement place_on_cuda(const GgufFile& file, const std::string& path, const LoadOptions& options,
                            bool fit_to_memory = false);

}  // namespace kiln
#endif
