#include "engine/context.h"

#include <algorithm>
#include <numeric>

#include "kernels/cpu/cpu_backend.h"
#include "engine/gpu_devices.h"
#include "engine/layer_split.h"
#include "kernels/host_memory.h"
#include "models/model_registry.h"
#ifdef KILN_HAVE_VULKAN
#include "kernels/vulkan/vulkan_backend.h"
#endif
#ifdef KILN_HAVE_CUDA
#include "engine/cuda_placement.h"
#endif

namespace kiln {

namespace {
std::unique_ptr<Backend> make_backend(const LoadOptions& o, const GgufFile& file) {
    if (o.backend == "cpu" || o.n_gpu_layers == 0) return std::make_unique<cpu::CpuBackend>(o.n_threads);
    if (o.backend == "vulkan") {
#ifdef KILN_HAVE_VULKAN
        (void)file;
        return std::make_unique<vk::VulkanBackend>(vk::VulkanOptions{o.device, true});
#else
        (void)file;
        throw ModelError("this kiln was built without the Vulkan backend; rebuild with -DKILN_VULKAN=ON or use --backend cpu");
#endif
    }
    if (o.backend == "cuda")
        throw ModelError("this kiln was built without the CUDA backend; rebuild with -DKILN_CUDA=ON (needs nvcc) or use --backend cpu");
    throw ModelError("backend '" + o.backend + "' is not available in this build (expected auto, cpu, cuda or vulkan)");
}

bool on_cpu(const Backend* b) { return dynamic_cast<const cpu::CpuBackend*>(b) != nullptr; }

// Layers of the placement whose KV cache the host holds.
int64_t host_layers(const Placement& p, int64_t n_layer) {
    if (p.layers.empty()) return on_cpu(p.input) ? n_layer : 0;
    return int64_t(std::count_if(p.layers.begin(), p.layers.end(), on_cpu));
}

std::string cpu_summary(int n_threads) {
    return "cpu (" + (n_threads > 0 ? std::to_string(n_threads) : std::string("all")) + " threads)";
}
}  // namespace

std::shared_ptr<Model> load_model(const std::string& path, const LoadOptions& options) {
    std::shared_ptr<Model> m(new Model());
    m->file_ = std::make_unique<GgufFile>(GgufFile::open(path));
    LoadOptions o = options;
    const bool automatic = o.backend == "auto";
    if (automatic) {
        const BackendChoice choice = auto_backend();
        o.backend = choice.backend;
        if (o.device < 0) o.device = choice.device;
    }
    if (o.device < 0) o.device = 0;
    Placement placement;
#ifdef KILN_HAVE_CUDA
    if (o.backend == "cuda" && o.n_gpu_layers != 0) {
        // Asked for by name, a model that does not fit is an error naming the -ngl that
        // would; chosen automatically, it gets the layers that fit (or stays on the CPU).
        CudaPlacement cp = place_on_cuda(*m->file_, path, o, /*fit_to_memory=*/automatic && o.n_gpu_layers < 0);
        if (cp.gpu) {
            m->placement_summary_ = cp.summary;
            if (!cp.cpu) m->whole_on_cuda_ = o.device;
            m->backend_ = std::move(cp.gpu);
            m->cpu_backend_ = std::move(cp.cpu);
            placement = std::move(cp.placement);
            m->impl_ = create_model(*m->file_, placement);
            m->n_host_layers_ = host_layers(placement, m->impl_->hparams().n_layer);
            return m;
        }
        o.backend = "cpu";
    }
#endif
#ifdef KILN_HAVE_VULKAN
    if (o.backend == "vulkan" && o.n_gpu_layers > 0) {
        const int64_t n_layer = layer_count(*m->file_, path);
        if (o.n_gpu_layers < n_layer) {
            auto gpu = std::make_unique<vk::VulkanBackend>(vk::VulkanOptions{o.device, true});
            auto cpu = std::make_unique<cpu::CpuBackend>(o.n_threads);
            placement = split_layers(cpu.get(), gpu.get(), n_layer, o.n_gpu_layers);
            m->placement_summary_ = "vulkan " + std::to_string(o.device) + ": " + std::to_string(o.n_gpu_layers) + "/" +
                                    std::to_string(n_layer) + " layers";
            m->backend_ = std::move(gpu);
            m->cpu_backend_ = std::move(cpu);
            m->impl_ = create_model(*m->file_, placement);
            m->n_host_layers_ = host_layers(placement, m->impl_->hparams().n_layer);
            return m;
        }
    }
#endif
    m->backend_ = make_backend(o, *m->file_);
    m->placement_summary_ = o.backend == "vulkan" && o.n_gpu_layers != 0
                                ? "vulkan " + std::to_string(o.device) + ": all layers"
                                : cpu_summary(o.n_threads);
    placement.input = m->backend_.get();
    m->impl_ = create_model(*m->file_, placement);
    m->n_host_layers_ = host_layers(placement, m->impl_->hparams().n_layer);
    return m;
}

namespace {
int64_t context_size(const Model& model, const ContextOptions& o) {
    if (o.n_ctx < 0) throw std::invalid_argument("context size must not be negative (got " + std::to_string(o.n_ctx) + ")");
    // A 128k-token training context would make a multi-GB cache nobody asked for.
    const int64_t n = o.n_ctx == 0 ? std::min<int64_t>(model.hparams().n_ctx_train, 4096) : o.n_ctx;
    require_host_kv_fits(model, n, 1, o.kv_type);
    return n;
}
}  // namespace

void require_host_kv_fits(const Model& model, int64_t n_ctx, int64_t n_seqs, GgmlType kv_type) {
    const int64_t layers = model.n_host_layers();
    if (layers <= 0 || n_ctx <= 0 || n_seqs <= 0) return;
    const int64_t per_ctx = n_seqs * 2 * layers * model.hparams().n_kv_dim() * (kv_type == GgmlType::F32 ? 4 : 2);
    const int64_t need = n_ctx * per_ctx, avail = host_memory_available();
    if (avail < 0 || need <= avail) return;
    const int64_t fits = avail / per_ctx / 256 * 256;
    throw ContextOverflowError("a context of " + std::to_string(n_ctx) + " tokens" +
                               (n_seqs > 1 ? " x " + std::to_string(n_seqs) + " sequences" : std::string()) + " needs " +
                               format_bytes(need) + " of RAM for the KV cache of its " + std::to_string(layers) +
                               " CPU layers; " + format_bytes(avail) + " are available: " +
                               (fits > 0 ? "lower -c to " + std::to_string(fits) + " or less"
                                         : std::string("offload layers to a GPU (-ngl) or free memory")));
}

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& options)
    : model_(std::move(model)),
      n_batch_(options.n_batch),
      kv_(model_->hparams().n_layer, model_->hparams().n_kv_dim(), context_size(*model_, options), options.kv_type) {
    if (n_batch_ <= 0) throw std::invalid_argument("batch size must be positive (got " + std::to_string(n_batch_) + ")");
    n_batch_ = std::min(n_batch_, kv_.n_cells());
    state_ = model_->transformer().new_state(n_batch_);
    pos_.resize(size_t(n_batch_));
    seq_.assign(size_t(n_batch_), 0);
    cells_.resize(size_t(n_batch_));
    outputs_.resize(size_t(n_batch_));
}

std::span<const float> Context::eval(std::span<const int32_t> tokens) { return run(tokens, false); }
std::span<const float> Context::eval_all(std::span<const int32_t> tokens) { return run(tokens, true); }

std::span<const float> Context::run(std::span<const int32_t> tokens, bool all_logits) {
    const int64_t n = int64_t(tokens.size());
    const int64_t n_ctx = kv_.n_cells();
    if (n == 0) throw std::invalid_argument("eval: no tokens to evaluate");
    if (n_past_ + n > n_ctx) {
        if (n_past_ == 0)
            throw ContextOverflowError("prompt is " + std::to_string(n) + " tokens but the context is " +
                                       std::to_string(n_ctx) + "; use -c to raise it");
        throw ContextOverflowError(std::to_string(n) + " more tokens after the " + std::to_string(n_past_) +
                                   " already in the context need " + std::to_string(n_past_ + n) +
                                   " positions but the context is " + std::to_string(n_ctx) + "; use -c to raise it");
    }
    const int64_t n_vocab = model_->n_vocab();
    for (int32_t t : tokens)
        if (t < 0 || t >= n_vocab)
            throw std::invalid_argument("eval: token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                        std::to_string(n_vocab) + ")");
    logits_.resize(size_t((all_logits ? n : 1) * n_vocab));

    const int64_t n_past_before = n_past_;
    try {
        for (int64_t i0 = 0; i0 < n; i0 += n_batch_) {
            const int64_t m = std::min(n_batch_, n - i0);
            const bool last = i0 + m == n;
            for (int64_t i = 0; i < m; ++i) pos_[size_t(i)] = int32_t(n_past_ + i);
            const auto pos = std::span<const int32_t>(pos_).first(size_t(m));
            const auto seq = std::span<const int32_t>(seq_).first(size_t(m));
            const auto cells = std::span<int32_t>(cells_).first(size_t(m));
            kv_.claim(pos, seq, cells);
            std::span<const int32_t> outputs;
            float* out = logits_.data();
            if (all_logits) {
                std::iota(outputs_.begin(), outputs_.begin() + m, 0);
                outputs = std::span<const int32_t>(outputs_).first(size_t(m));
                out += i0 * n_vocab;
            } else if (last) {
                outputs_[0] = int32_t(m - 1);
                outputs = std::span<const int32_t>(outputs_).first(1);
            }
            const Batch batch{tokens.subspan(size_t(i0), size_t(m)), pos, seq, cells, outputs};
            model_->transformer().forward(*state_, batch, kv_.view(), out);
            n_past_ += m;
        }
    } catch (...) {
        // Leave the context exactly as it was before this call.
        kv_.seq_rm(0, int32_t(n_past_before), -1);
        n_past_ = n_past_before;
        throw;
    }
    return logits_;
}

void Context::truncate(int64_t n) {
    if (n < 0 || n > n_past_)
        throw std::invalid_argument("truncate(" + std::to_string(n) + "): the context holds " + std::to_string(n_past_) + " tokens");
    kv_.seq_rm(0, int32_t(n), -1);
    n_past_ = n;
}

}  // namespace kiln
