#include "engine/generation.h"

#include <algorithm>

#include "engine/stop.h"
#include "engine/utf8.h"

namespace kiln {

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "stop";
}

Session::Session(Context& ctx, const Tokenizer& tokenizer) : ctx_(ctx), tokenizer_(tokenizer) {
    if (ctx_.n_past() != 0) ctx_.reset();
}

void Session::reset() {
    ctx_.reset();
    tokens_.clear();
}

std::span<const float> Session::prefill(std::span<const int32_t> tokens) {
    if (tokens.empty()) throw std::invalid_argument("the prompt is empty");
    size_t common = 0;
    while (common < tokens_.size() && common < tokens.size() && tokens_[common] == tokens[common]) ++common;
    // Re-evaluate at least the last token: its logits are what the caller needs.
    common = std::min(common, tokens.size() - 1);
    if (tokens.size() > size_t(ctx_.n_ctx()))
        throw ContextOverflowError("prompt is " + std::to_string(tokens.size()) + " tokens but the context is " +
                                   std::to_string(ctx_.n_ctx()) + "; use -c to raise it");
    ctx_.truncate(int64_t(common));
    tokens_.resize(common);
    auto logits = ctx_.eval(tokens.subspan(common));
    tokens_.assign(tokens.begin(), tokens.end());
    return logits;
}

GenerationResult Session::generate(const GenerationRequest& request,
                                   const std::function<bool(std::string_view)>& on_text) {
    using clock = std::chrono::steady_clock;
    GenerationResult result;
    Sampler sampler(request.sampling, int32_t(ctx_.n_vocab()));
    StopMatcher stop(request.stop);
    Utf8Buffer utf8;

    const auto t0 = clock::now();
    const size_t cached_before = tokens_.size();
    size_t reused = 0;
    while (reused < cached_before && reused < request.prompt.size() && tokens_[reused] == request.prompt[reused])
        ++reused;
    std::span<const float> logits = prefill(request.prompt);
    result.n_prompt = int64_t(request.prompt.size());
    result.n_prompt_evaluated = result.n_prompt - int64_t(std::min(reused, request.prompt.size() - 1));
    const auto t1 = clock::now();
    result.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

    for (int32_t t : request.prompt) sampler.accept(t);

    auto emit = [&](const std::string& text) {
        if (text.empty()) return true;
        result.text += text;
        return on_text(text);
    };

    result.finish = FinishReason::Length;
    for (;;) {
        if (request.max_tokens >= 0 && int64_t(result.tokens.size()) >= request.max_tokens) break;
        const int32_t token = sampler.sample(logits);
        sampler.accept(token);
        result.tokens.push_back(token);
        if (tokenizer_.is_eog(token)) {
            result.finish = FinishReason::Stop;
            break;
        }
        StopScan scan = stop.feed(utf8.feed(tokenizer_.token_to_piece(token)));
        if (!emit(scan.text)) {
            result.finish = FinishReason::Cancelled;
            break;
        }
        if (scan.stopped) {
            result.finish = FinishReason::Stop;
            break;
        }
        if (ctx_.n_past() >= ctx_.n_ctx()) break;  // context full: finish with "length"
        logits = ctx_.eval(std::span<const int32_t>(&token, 1));
        tokens_.push_back(token);
    }
    if (!stop.stopped() && result.finish != FinishReason::Cancelled) {
        std::string tail = stop.feed(utf8.flush()).text;
        if (!stop.stopped()) tail += stop.flush();
        emit(tail);
    }
    result.generation_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return result;
}

}  // namespace kiln
