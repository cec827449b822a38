#include "engine/perplexity.h"

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

namespace kiln {

namespace {

// -log softmax(logits)[target], in double: the sums run over the whole vocabulary.
double negative_log_likelihood(std::span<const float> logits, int32_t target) {
    float max_logit = logits[0];
    for (float l : logits) max_logit = std::max(max_logit, l);
    double sum = 0;
    for (float l : logits) sum += std::exp(double(l) - max_logit);
    return -(double(logits[size_t(target)]) - max_logit - std::log(sum));
}

}  // namespace

PerplexityResult perplexity(Context& ctx, std::span<const int32_t> tokens, int64_t n_ctx,
                            std::optional<int32_t> bos,
                            const std::function<void(const PerplexityChunk&)>& on_chunk) {
    if (n_ctx < 4) throw std::invalid_argument("perplexity: the chunk size must be at least 4 tokens");
    if (ctx.n_ctx() < n_ctx)
        throw std::invalid_argument("perplexity: the context holds " + std::to_string(ctx.n_ctx()) +
                                    " tokens, fewer than the chunk size " + std::to_string(n_ctx));
    if (int64_t(tokens.size()) < 2 * n_ctx)
        throw std::invalid_argument("perplexity: the text is " + std::to_string(tokens.size()) +
                                    " tokens; at least " + std::to_string(2 * n_ctx) +
                                    " (2 x the context) are needed");
    PerplexityResult r;
    r.n_chunks = int64_t(tokens.size()) / n_ctx;
    const int64_t n_vocab = ctx.n_vocab();
    const int64_t first = n_ctx / 2;
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    double nll = 0, nll2 = 0;
    for (int64_t c = 0; c < r.n_chunks; ++c) {
        const auto src = tokens.subspan(size_t(c * n_ctx), size_t(n_ctx));
        chunk.assign(src.begin(), src.end());
        if (bos) chunk[0] = *bos;
        ctx.reset();
        std::span<const float> logits = ctx.eval_all(chunk);
        for (int64_t j = first; j < n_ctx - 1; ++j) {
            const double v = negative_log_likelihood(logits.subspan(size_t(j * n_vocab), size_t(n_vocab)),
                                                     src[size_t(j + 1)]);
            nll += v;
            nll2 += v * v;
            ++r.n_scored;
        }
        if (on_chunk) on_chunk({c, r.n_chunks, std::exp(nll / double(r.n_scored))});
    }
    ctx.reset();
    const double n = double(r.n_scored);
    const double mean = nll / n;
    r.ppl = std::exp(mean);
    const double var = nll2 / n - mean * mean;
    r.ppl_error = var > 0 && n > 1 ? r.ppl * std::sqrt(var / (n - 1)) : 0;
    return r;
}

}  // namespace kiln
