#pragma once
// Perplexity by llama.cpp's llama-perplexity method, so figures compare:
// the text is tokenized once (with BOS when the vocabulary adds one), cut into
// consecutive chunks of n_ctx tokens (the remainder is dropped); each chunk's
// first token is replaced by BOS, and only the second half of each chunk is
// scored, each token predicted from everything before it in the chunk.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "engine/context.h"

namespace kiln {

struct PerplexityChunk {
    int64_t index;          // 0-based
    int64_t n_chunks;
    double running_ppl;     // over all chunks so far
};

struct PerplexityResult {
    int64_t n_chunks = 0;
    int64_t n_scored = 0;   // tokens scored
    double ppl = 0;
    double ppl_error = 0;   // the ± llama.cpp prints: ppl * stddev(nll) / sqrt(n - 1)
};

// `ctx` must have n_ctx() >= chunk size; it is reset before each chunk.
// `bos` replaces each chunk's first token when set. Throws std::invalid_argument
// when the text has fewer than 2 * n_ctx tokens (llama.cpp's requirement).
PerplexityResult perplexity(Context& ctx, std::span<const int32_t> tokens, int64_t n_ctx,
                            std::optional<int32_t> bos,
                            const std::function<void(const PerplexityChunk&)>& on_chunk = {});

}  // namespace kiln
