#include "cli/loaded_model.h"

#include <algorithm>
#include <filesystem>

namespace kiln::cli {

int64_t default_context(const Model& model) {
    const int64_t train = model.hparams().n_ctx_train;
    return train > 0 ? std::min<int64_t>(train, 4096) : 4096;
}

LoadedModel load_for_cli(const ModelOptions& options) {
    if (options.model_path.empty()) throw UsageError("no model given: pass -m FILE.gguf");
    if (!std::filesystem::exists(options.model_path))
        throw UsageError("model file not found: " + options.model_path);
    LoadedModel m;
    m.model = load_model(options.model_path, to_load_options(options));
    m.tokenizer = Tokenizer::from_gguf(m.model->gguf());
    ContextOptions ctx;
    ctx.n_ctx = options.n_ctx > 0 ? options.n_ctx : default_context(*m.model);
    ctx.n_batch = options.n_batch;
    m.context = std::make_unique<Context>(m.model, ctx);
    return m;
}

LoadOptions to_load_options(const ModelOptions& options) {
    LoadOptions load;
    load.n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
    load.backend = options.backend;
    load.device = options.device;
    load.n_gpu_layers = options.n_gpu_layers;
    return load;
}

SamplingParams to_sampling_params(const SamplingOptions& o) {
    SamplingParams p;
    p.temperature = o.temperature;
    p.top_k = o.top_k;
    p.top_p = o.top_p;
    p.min_p = o.min_p;
    p.repeat_penalty = o.repeat_penalty;
    p.penalty_last_n = o.repeat_last_n;
    p.presence_penalty = o.presence_penalty;
    p.frequency_penalty = o.frequency_penalty;
    p.seed = o.seed ? *o.seed : random_seed();
    return p;
}

}  // namespace kiln::cli
