#pragma once
// Loading what every generating subcommand needs from the shared model options:
// the model, its tokenizer and a context, with errors a user can act on.
#include <memory>

#include "cli/options.h"
#include "engine/context.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace kiln::cli {

struct LoadedModel {
    std::shared_ptr<Model> model;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<Context> context;
};

// Throws UsageError when no model was given or the backend is not available.
LoadedModel load_for_cli(const ModelOptions& options);

// The engine's load options for the shared -t/--backend/-ngl/--device flags.
LoadOptions to_load_options(const ModelOptions& options);

// The model's context size for -c 0: its training context, at most 4096.
int64_t default_context(const Model& model);

SamplingParams to_sampling_params(const SamplingOptions& o);

}  // namespace kiln::cli
