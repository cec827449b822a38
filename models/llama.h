#pragma once
// The Llama architecture (Llama 1/2/3, TinyLlama, llama2.c models, ...):
// pre-norm decoder blocks with RMSNorm, rotary attention with GQA and a
// SwiGLU feed-forward network.
#include <memory>

#include "formats/gguf.h"
#include "models/model.h"

namespace kiln {

// Binds the weights of `file` (which must outlive the model) on the placement's backends.
std::unique_ptr<TransformerModel> load_llama(const GgufFile& file, const Placement& placement);

}  // namespace kiln
