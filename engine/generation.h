#pragma once
// One conversation's state on top of a Context: the tokens its KV cache holds,
// so a new prompt that shares a prefix with them only evaluates the rest, and
// the generation loop (sample -> stop checks -> stream text) that `kiln run`,
// `kiln chat` and the server share.
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/context.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace kiln {

enum class FinishReason { Stop, Length, Cancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled"

struct GenerationRequest {
    std::vector<int32_t> prompt;       // full prompt; a cached prefix is reused
    int32_t max_tokens = -1;           // < 0: until end of generation or a full context
    SamplingParams sampling;
    std::vector<std::string> stop;     // stop strings, matched across token boundaries
};

struct GenerationResult {
    std::string text;                  // emitted text (stop string excluded)
    std::vector<int32_t> tokens;       // generated ids (an end-of-generation token included)
    FinishReason finish = FinishReason::Stop;
    int64_t n_prompt = 0;              // prompt tokens
    int64_t n_prompt_evaluated = 0;    // of those, not taken from the cache
    double prompt_seconds = 0;
    double generation_seconds = 0;     // from the first sampled token to the end
};

class Session {
public:
    explicit Session(Context& ctx, const Tokenizer& tokenizer);

    // Brings the cache to hold exactly `tokens` (reusing the longest cached prefix) and
    // returns the next-token logits. At least the last token is always evaluated so
    // logits exist. Throws ContextOverflowError when they do not fit.
    std::span<const float> prefill(std::span<const int32_t> tokens);

    // Streams text pieces (complete UTF-8 characters) to on_text as they are decided;
    // on_text returns false to cancel. The tokens stay in the cache for the next turn.
    GenerationResult generate(const GenerationRequest& request,
                              const std::function<bool(std::string_view)>& on_text);

    const std::vector<int32_t>& tokens() const { return tokens_; }
    Context& context() { return ctx_; }
    void reset();

private:
    Context& ctx_;
    const Tokenizer& tokenizer_;
    std::vector<int32_t> tokens_;  // what the KV cache holds, in order
};

}  // namespace kiln
