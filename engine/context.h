#pragma once
// What the CLI and the server use to run a model: load it once, then make
// contexts (a KV cache plus scratch) that evaluate tokens and return logits.
//
//   auto model = kiln::load_model("m.gguf", {.n_threads = 2});
//   kiln::Context ctx(model, {.n_ctx = 2048});
//   std::span<const float> logits = ctx.eval(prompt_ids);   // next-token logits
//
// A model and its contexts are driven from one thread at a time.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/kv_cache.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "models/model.h"

namespace kiln {

struct LoadOptions {
    int n_threads = 0;  // CPU threads; 0: one per hardware thread
    std::string backend = "cpu";  // "cpu", "cuda" (builds with KILN_CUDA), "vulkan" (KILN_VULKAN) or
                                  // "auto": a GPU when one is present (engine/gpu_devices.h), with as
                                  // many layers as fit in its memory, else the CPU
    int device = -1;              // GPU backends: device index (`kiln info --devices`); -1: the first
    int n_gpu_layers = -1;        // GPU backends: layers on the GPU; -1: all, 0: none (CPU only).
                                  // CUDA and Vulkan: the last N layers (and the output head) on the GPU, the rest on the CPU
};

// A loaded model: the mapped file, its backend and the bound weights.
class Model {
public:
    const Hparams& hparams() const { return impl_->hparams(); }
    int64_t n_vocab() const { return impl_->n_vocab(); }
    const GgufFile& gguf() const { return *file_; }
    const TransformerModel& transformer() const { return *impl_; }
    Backend& backend() const { return *backend_; }
    // Where the model runs, for people: "cpu (2 threads)", "cuda 0 (NVIDIA H100): 22/32 layers".
    const std::string& placement_summary() const { return placement_summary_; }
    // Layers whose KV cache lives in host memory (those on the CPU backend).
    int64_t n_host_layers() const { return n_host_layers_; }
    // The CUDA device when every layer and the output head run on it (its memory
    // then bounds decode), else nullopt.
    std::optional<int> whole_on_cuda() const { return whole_on_cuda_; }

private:
    friend std::shared_ptr<Model> load_model(const std::string& path, const LoadOptions& options);
    Model() = default;
    // Declaration order is destruction order in reverse: weights go before the file they view.
    std::unique_ptr<GgufFile> file_;
    std::unique_ptr<Backend> cpu_backend_;  // the CPU layers of a partial GPU offload, else null
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<TransformerModel> impl_;
    std::string placement_summary_;
    int64_t n_host_layers_ = 0;
    std::optional<int> whole_on_cuda_;
};

// Throws ContextOverflowError, naming a -c that fits, when the host KV cache of
// n_ctx x n_seqs cells (-c per sequence, n_seqs of them) for the model's CPU
// layers needs more RAM than is available (kernels/host_memory.h): a cache the
// system cannot hold would be filled page by page during generation and end in
// the kernel killing the process.
void require_host_kv_fits(const Model& model, int64_t n_ctx, int64_t n_seqs, GgmlType kv_type);

// Throws GgufError (bad file) or ModelError (unsupported/mis-shaped model), naming the file.
std::shared_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});

struct ContextOptions {
    int64_t n_ctx = 0;              // tokens the context holds; 0: the training context, at most 4096
    int64_t n_batch = 512;          // tokens per forward pass (longer inputs are split)
    GgmlType kv_type = GgmlType::F16;  // F16 or F32
};

class Context {
public:
    Context(std::shared_ptr<const Model> model, const ContextOptions& options = {});

    // Evaluates `tokens` after the n_past() cached ones (in chunks of n_batch) and
    // returns the logits of the last one (n_vocab floats, valid until the next call).
    // Throws ContextOverflowError when they do not fit, leaving the context as it was;
    // on any error the context keeps exactly the tokens it had before the call.
    std::span<const float> eval(std::span<const int32_t> tokens);
    // As eval(), but returns the logits of every token: tokens.size() rows of n_vocab.
    std::span<const float> eval_all(std::span<const int32_t> tokens);

    int64_t n_past() const { return n_past_; }
    int64_t n_ctx() const { return kv_.n_cells(); }
    int64_t n_batch() const { return n_batch_; }
    int64_t n_vocab() const { return model_->n_vocab(); }
    const Model& model() const { return *model_; }
    // Drops cached tokens from position n on (keeps a prefix for reuse); n <= n_past().
    void truncate(int64_t n);
    void reset() { truncate(0); }

private:
    std::span<const float> run(std::span<const int32_t> tokens, bool all_logits);

    std::shared_ptr<const Model> model_;
    int64_t n_batch_;
    KvCache kv_;
    std::unique_ptr<ForwardState> state_;
    int64_t n_past_ = 0;
    std::vector<float> logits_;
    // Per-chunk batch arrays, sized n_batch once.
    std::vector<int32_t> pos_, seq_, cells_, outputs_;
};

}  // namespace kiln
