#pragma once
// Turning logits into the next token. The chain and its order follow
// llama.cpp's default so the same settings mean the same thing to users:
//   penalties (last penalty_last_n tokens) -> logit bias -> top-k -> top-p
//   -> min-p -> temperature -> seeded draw
// The filters look at the temperature-1 distribution; temperature only shapes
// the final draw. temperature <= 0 is greedy: the argmax after penalties and
// bias, lowest id on ties.
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

struct SamplingParams {
    float temperature = 0.8f;       // >= 0; 0 = greedy
    int32_t top_k = 40;             // >= 0; 0 = off; above n_vocab = off
    float top_p = 0.95f;            // [0, 1]; 1 = off; 0 = keep only the most likely token
    float min_p = 0.05f;            // [0, 1]; 0 = off; keep p >= min_p * p_max
    float repeat_penalty = 1.0f;    // > 0; 1 = off. llama.cpp's: positive logits / x, negative * x
    float presence_penalty = 0.0f;  // OpenAI: logit -= presence_penalty if the token occurred
    float frequency_penalty = 0.0f; // OpenAI: logit -= frequency_penalty * occurrences
    int32_t penalty_last_n = 64;    // >= 0; how many accepted tokens the penalties see; 0 = off
    // (token, bias) added to the logit; -inf bans the token. Repeated tokens add up.
    std::vector<std::pair<int32_t, float>> logit_bias;
    uint64_t seed = 0;              // same seed, same logits -> same tokens, on every platform
    // OpenAI `logprobs` / `top_logprobs`: log-softmax of the model's raw
    // logits (before penalties, bias and temperature) for the chosen token and
    // the top_logprobs most likely ones.
    bool logprobs = false;
    int32_t top_logprobs = 0;       // >= 0, <= n_vocab; implies logprobs when > 0
};

// A parameter outside its range; param() names it as the user spelled it in
// SamplingParams, so the server can fill an OpenAI error's "param".
class InvalidSamplingParams : public std::invalid_argument {
public:
    InvalidSamplingParams(std::string param, const std::string& message)
        : std::invalid_argument(message), param_(std::move(param)) {}
    const std::string& param() const { return param_; }

private:
    std::string param_;
};

// Throws InvalidSamplingParams for the first bad value, saying what is allowed.
void validate(const SamplingParams& params, int32_t n_vocab);

// A fresh seed from the operating system, for when the user gave none.
uint64_t random_seed();

struct TokenLogprob {
    int32_t token = -1;
    float logprob = 0.0f;  // natural log; -inf for a token the model gives no mass
};

struct SampledLogprobs {
    TokenLogprob chosen;
    std::span<const TokenLogprob> top;  // most likely first, lowest id on ties
};

class Sampler {
public:
    // Validates `params` (see validate()) and preallocates every buffer.
    Sampler(SamplingParams params, int32_t n_vocab);

    // Picks the next token from one row of logits (n_vocab values). Does not
    // add it to the penalty history: call accept() with the token kept.
    // NaN logits count as -inf. If penalties and bias leave no finite logit,
    // falls back to the argmax of the raw logits (0 if all are NaN).
    // No allocation after construction. Throws std::invalid_argument on a
    // wrong-sized row.
    int32_t sample(std::span<const float> logits);

    // Adds a token to the history the penalties look at (prompt tokens too,
    // if the caller wants them penalised). Throws std::out_of_range for an id
    // outside the vocabulary.
    void accept(int32_t token);

    // Forgets the history and restarts the random sequence from the seed.
    void reset();

    // Log-probabilities of the last sample() call (when params.logprobs or
    // top_logprobs > 0); valid until the next sample().
    SampledLogprobs last_logprobs() const;

    // The logits of the last sample() after penalties and logit bias (NaN as
    // -inf), before any filter or temperature: for debug dumps and tests.
    std::span<const float> adjusted_logits() const { return working_; }

    const SamplingParams& params() const { return params_; }
    int32_t n_vocab() const { return n_vocab_; }

private:
    struct Candidate {
        int32_t token;
        float logit;
    };

    void apply_penalties();
    void apply_logit_bias();
    int32_t argmax_working() const;
    void collect_candidates();
    void sort_prefix(std::size_t k);
    void keep_top_k();
    void keep_top_p();
    void keep_min_p();
    int32_t draw();
    void compute_logprobs(std::span<const float> logits, int32_t chosen);
    double uniform01();

    SamplingParams params_;
    int32_t n_vocab_;
    std::mt19937_64 rng_;

    std::vector<float> working_;        // (n_vocab) logits after penalties and bias
    std::vector<Candidate> candidates_; // (n_vocab) survivors
    std::size_t n_candidates_ = 0;
    // candidates_[0, n_sorted_) is sorted descending and no later candidate
    // comes before any of them: top-p only sorts as far as it must.
    std::size_t n_sorted_ = 0;
    std::vector<Candidate> selected_;   // (128) scratch for small-k selection

    // Penalty history: a ring of the last penalty_last_n accepted tokens and
    // each token's count in it, kept up to date on accept().
    std::vector<int32_t> history_;      // (<= penalty_last_n) ring
    std::size_t history_head_ = 0;      // next slot to overwrite once full
    std::vector<int32_t> counts_;       // (n_vocab) occurrences in history_
    std::vector<uint32_t> penalised_;   // (n_vocab) stamp: already penalised in this call
    uint32_t stamp_ = 0;

    std::vector<TokenLogprob> top_;     // (top_logprobs)
    TokenLogprob chosen_logprob_;
};

}  // namespace kiln
