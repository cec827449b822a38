#include "engine/cuda_placement.h"

#ifdef KILN_HAVE_CUDA
#include <algorithm>

#include "engine/layer_split.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/hparams.h"

namespace kiln {

namespace {
std::string mib(uint64_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MiB"; }

// Room left beside the weights for the KV cache, activations and the driver's
// own buffers of a typical context (the check is a guide, not a guarantee).
constexpr uint64_t kHeadroom = 768ull << 20;
}  // namespace

CudaPlacement place_on_cuda(const GgufFile& file, const std::string& path, const LoadOptions& o, bool fit_to_memory) {
    const int64_t n_layer = layer_count(file, path);
    int64_t n_gpu = o.n_gpu_layers < 0 ? n_layer : std::min<int64_t>(o.n_gpu_layers, n_layer);

    // Bytes the GPU would hold: every tensor of each offloaded layer, the head
    // (output.weight, or the tied embedding) and, in a full offload, the embedding.
    std::vector<uint64_t> layer_bytes(size_t(n_layer), 0);
    uint64_t embd = 0, head = 0;
    bool has_output = false;
    for (const GgufTensorInfo& t : file.tensors()) {
        const uint64_t bytes = cuda::CudaBackend::weight_bytes(t.type, t.n_elements());
        if (t.name.rfind("blk.", 0) == 0) {
            const int64_t il = std::atoll(t.name.c_str() + 4);
            if (il >= 0 && il < n_layer) layer_bytes[size_t(il)] += bytes;
        } else if (t.name == "token_embd.weight") {
            embd = bytes;
        } else if (t.name == "output.weight") {
            head += bytes;
            has_output = true;
        } else {
            head += bytes;  // output_norm, rope_freqs
        }
    }
    if (!has_output) head += embd;
    uint64_t need = head + (n_gpu == n_layer ? embd : 0);
    for (int64_t il = n_layer - n_gpu; il < n_layer; ++il) need += layer_bytes[size_t(il)];

    CudaPlacement cp;
    auto gpu = std::make_unique<cuda::CudaBackend>(cuda::CudaOptions{o.device});
    const uint64_t free = gpu->free_bytes();
    if (need + kHeadroom > free) {
        // The most trailing layers that fit beside the head.
        int64_t fit = 0;
        uint64_t sum = head + kHeadroom;
        for (int64_t il = n_layer - 1; il >= 0 && sum + layer_bytes[size_t(il)] <= free; --il, ++fit)
            sum += layer_bytes[size_t(il)];
        if (!fit_to_memory)
            throw ModelError(path + ": " + std::to_string(n_gpu) + " of " + std::to_string(n_layer) + " layers need " +
                             mib(need) + " of GPU memory plus ~" + mib(kHeadroom) + " for the context, but " +
                             gpu->device().name + " has " + mib(free) + " free; " +
                             (fit > 0 ? "use -ngl " + std::to_string(fit) + " (the most that fit)" : "no layer fits") +
                             " or --backend cpu");
        if (fit == 0) return cp;
        n_gpu = fit;
    }
    cp.summary = "cuda " + std::to_string(o.device) + " (" + gpu->device().name + "): " + std::to_string(n_gpu) + "/" +
                 std::to_string(n_layer) + " layers";
    Backend* g = gpu.get();
    cp.gpu = std::move(gpu);
    if (n_gpu == n_layer) {
        cp.placement.input = g;
        cp.placement.output = g;
        return cp;
    }
    cp.cpu = std::make_unique<cpu::CpuBackend>(o.n_threads);
    cp.placement = split_layers(cp.cpu.get(), g, n_layer, n_gpu);
    return cp;
}

}  // namespace kiln
#endif
