#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace kiln {

namespace {

constexpr float neg_inf = -std::numeric_limits<float>::infinity();

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

void require(bool ok, const char* param, const std::string& rule, const std::string& got) {
    if (!ok)
        throw InvalidSamplingParams(param, std::string("sampling parameter ") + param + " must be " + rule +
                                               ", got " + got);
}

// Descending by logit, then ascending by id: a strict total order, so every
// sort and selection below has one possible result on every platform.
// A function object, not a function pointer, so the sorts inline it.
constexpr auto before = [](const auto& a, const auto& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
};

}  // namespace

void validate(const SamplingParams& p, int32_t n_vocab) {
    if (n_vocab <= 0)
        throw InvalidSamplingParams("n_vocab", "sampler needs a vocabulary of at least one token, got n_vocab = " +
                                                   std::to_string(n_vocab));
    require(std::isfinite(p.temperature) && p.temperature >= 0.0f, "temperature",
            "a finite number >= 0 (0 = greedy)", num(p.temperature));
    require(p.top_k >= 0, "top_k", "an integer >= 0 (0 = off)", std::to_string(p.top_k));
    require(std::isfinite(p.top_p) && p.top_p >= 0.0f && p.top_p <= 1.0f, "top_p",
            "a number in [0, 1] (1 = off)", num(p.top_p));
    require(std::isfinite(p.min_p) && p.min_p >= 0.0f && p.min_p <= 1.0f, "min_p",
            "a number in [0, 1] (0 = off)", num(p.min_p));
    require(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f, "repeat_penalty",
            "a finite number > 0 (1 = off)", num(p.repeat_penalty));
    require(std::isfinite(p.presence_penalty), "presence_penalty", "a finite number (0 = off)",
            num(p.presence_penalty));
    require(std::isfinite(p.frequency_penalty), "frequency_penalty", "a finite number (0 = off)",
            num(p.frequency_penalty));
    require(p.penalty_last_n >= 0, "penalty_last_n", "an integer >= 0 (0 = off)", std::to_string(p.penalty_last_n));
    require(p.top_logprobs >= 0 && p.top_logprobs <= n_vocab, "top_logprobs",
            "an integer in [0, " + std::to_string(n_vocab) + "] (the vocabulary size)",
            std::to_string(p.top_logprobs));

    std::vector<bool> banned(static_cast<std::size_t>(n_vocab), false);
    std::size_t n_banned = 0;
    for (const auto& [token, bias] : p.logit_bias) {
        require(token >= 0 && token < n_vocab, "logit_bias",
                "keyed by token ids in [0, " + std::to_string(n_vocab) + ")", "token " + std::to_string(token));
        require(!std::isnan(bias) && bias != std::numeric_limits<float>::infinity(), "logit_bias",
                "a number or -inf (to ban the token)", num(bias) + " for token " + std::to_string(token));
        if (bias == neg_inf && !banned[token]) {
            banned[token] = true;
            ++n_banned;
        }
    }
    require(n_banned < static_cast<std::size_t>(n_vocab), "logit_bias", "leave at least one token allowed",
            "a bias of -inf on all " + std::to_string(n_vocab) + " tokens");
}

uint64_t random_seed() {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
}

Sampler::Sampler(SamplingParams params, int32_t n_vocab) : params_(std::move(params)), n_vocab_(n_vocab) {
    validate(params_, n_vocab_);
    if (params_.top_logprobs > 0) params_.logprobs = true;
    rng_.seed(params_.seed);
    const auto n = static_cast<std::size_t>(n_vocab_);
    working_.resize(n);
    candidates_.resize(n);
    selected_.resize(128);
    counts_.assign(n, 0);
    penalised_.assign(n, 0);
    // A long window only fills as tokens are accepted; don't reserve 2^24 slots up front.
    history_.reserve(std::min<std::size_t>(static_cast<std::size_t>(params_.penalty_last_n), 1 << 16));
    top_.resize(static_cast<std::size_t>(params_.top_logprobs));
}

void Sampler::accept(int32_t token) {
    if (token < 0 || token >= n_vocab_)
        throw std::out_of_range("Sampler::accept: token id " + std::to_string(token) +
                                " is outside the vocabulary [0, " + std::to_string(n_vocab_) + ")");
    const auto window = static_cast<std::size_t>(params_.penalty_last_n);
    if (window == 0) return;
    if (history_.size() < window) {
        history_.push_back(token);
    } else {
        --counts_[history_[history_head_]];
        history_[history_head_] = token;
        history_head_ = (history_head_ + 1) % window;
    }
    ++counts_[token];
}

void Sampler::reset() {
    for (int32_t t : history_) counts_[t] = 0;
    history_.clear();
    history_head_ = 0;
    rng_.seed(params_.seed);
}

void Sampler::apply_penalties() {
    const float repeat = params_.repeat_penalty;
    const float presence = params_.presence_penalty;
    const float frequency = params_.frequency_penalty;
    if (history_.empty() || (repeat == 1.0f && presence == 0.0f && frequency == 0.0f)) return;
    if (++stamp_ == 0) {  // the stamp wrapped: old marks could collide with new ones
        std::fill(penalised_.begin(), penalised_.end(), 0u);
        stamp_ = 1;
    }
    for (int32_t t : history_) {
        if (penalised_[t] == stamp_) continue;
        penalised_[t] = stamp_;
        float& logit = working_[t];
        // llama.cpp's repetition penalty: dividing a negative logit would raise it.
        logit = logit <= 0.0f ? logit * repeat : logit / repeat;
        const auto count = static_cast<float>(counts_[t]);
        logit -= count * frequency + presence;
    }
}

void Sampler::apply_logit_bias() {
    for (const auto& [token, bias] : params_.logit_bias) working_[token] += bias;
}

int32_t Sampler::argmax_working() const {
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab_; ++i)
        if (working_[i] > working_[best]) best = i;
    return best;
}

void Sampler::collect_candidates() {
    n_candidates_ = 0;
    n_sorted_ = 0;
    float max_logit = neg_inf;
    for (int32_t i = 0; i < n_vocab_; ++i) {
        const float l = working_[i];
        if (l == neg_inf) continue;
        candidates_[n_candidates_++] = {i, l};
        max_logit = std::max(max_logit, l);
    }
    // +inf logits would turn every softmax below into NaN: they share all the
    // probability, so keep them alone, equally likely.
    if (max_logit == std::numeric_limits<float>::infinity()) {
        std::size_t kept = 0;
        for (std::size_t i = 0; i < n_candidates_; ++i)
            if (candidates_[i].logit == max_logit) candidates_[kept++] = {candidates_[i].token, 0.0f};
        n_candidates_ = kept;
    }
}

void Sampler::sort_prefix(std::size_t k) {
    k = std::min(k, n_candidates_);
    if (k <= n_sorted_) return;
    auto first = candidates_.begin();
    auto last = first + static_cast<std::ptrdiff_t>(n_candidates_);
    auto kth = first + static_cast<std::ptrdiff_t>(k);
    if (n_sorted_ == 0 && k <= selected_.size() && kth < last) {
        // Small k (top_k = 40, top-p's first window) over a large vocabulary:
        // one pass that rejects almost every candidate with one comparison
        // against the current k-th best beats nth_element's several passes.
        std::size_t filled = 0;
        for (auto it = first; it != last; ++it) {
            if (filled == k && !before(*it, selected_[k - 1])) continue;
            std::size_t at = filled < k ? filled++ : k - 1;
            for (; at > 0 && before(*it, selected_[at - 1]); --at) selected_[at] = selected_[at - 1];
            selected_[at] = *it;
        }
        // Move exactly those k to the front (the order is total, so "not after
        // the k-th" selects them), then lay them down in sorted order.
        const Candidate kth_best = selected_[k - 1];
        std::partition(first, last, [&](const Candidate& c) { return !before(kth_best, c); });
        std::copy(selected_.begin(), selected_.begin() + static_cast<std::ptrdiff_t>(k), first);
    } else {
        auto from = first + static_cast<std::ptrdiff_t>(n_sorted_);
        if (kth < last) std::nth_element(from, kth, last, before);
        std::sort(from, kth, before);
    }
    n_sorted_ = k;
}

void Sampler::keep_top_k() {
    const auto k = static_cast<std::size_t>(params_.top_k);
    if (k == 0 || k >= n_candidates_) return;
    sort_prefix(k);
    n_candidates_ = k;
}

void Sampler::keep_top_p() {
    if (params_.top_p >= 1.0f || n_candidates_ <= 1) return;
    sort_prefix(1);
    // Single-precision exp (each term's error ~1 ulp) summed in double: these
    // sums run over the whole vocabulary, where double exp dominates the time.
    const float max_logit = candidates_[0].logit;
    double total = 0.0;
    for (std::size_t i = 0; i < n_candidates_; ++i) total += std::exp(candidates_[i].logit - max_logit);
    // The smallest most-likely prefix whose mass reaches top_p (at least one
    // token). Sorting all of a 150k vocabulary per token costs tens of ms, and
    // the prefix is usually short: sort a window, widen it only when needed.
    const double target = static_cast<double>(params_.top_p) * total;
    double cumulative = 0.0;
    std::size_t kept = 0;
    while (kept < n_candidates_) {
        if (kept == n_sorted_) sort_prefix(std::max<std::size_t>(64, n_sorted_ * 8));
        cumulative += std::exp(candidates_[kept].logit - max_logit);
        ++kept;
        if (cumulative >= target) break;
    }
    n_candidates_ = kept;
}

void Sampler::keep_min_p() {
    if (params_.min_p <= 0.0f || n_candidates_ <= 1) return;
    float max_logit = candidates_[0].logit;
    if (n_sorted_ == 0)
        for (std::size_t i = 1; i < n_candidates_; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
    // p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p): no softmax needed.
    const double threshold = static_cast<double>(max_logit) + std::log(static_cast<double>(params_.min_p));
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n_candidates_; ++i)
        if (candidates_[i].logit >= threshold) candidates_[kept++] = candidates_[i];
    n_candidates_ = kept;  // the max itself always passes, so kept >= 1
}

double Sampler::uniform01() {
    // The top 53 bits of mt19937_64 (whose output the standard fixes) as a
    // double in [0, 1): std::uniform_real_distribution's result varies by library.
    return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::draw() {
    if (n_candidates_ == 1) return candidates_[0].token;
    float max_logit = candidates_[0].logit;
    for (std::size_t i = 1; i < n_candidates_; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
    const double inv_temperature = 1.0 / static_cast<double>(params_.temperature);
    double total = 0.0;
    for (std::size_t i = 0; i < n_candidates_; ++i)
        total += std::exp((candidates_[i].logit - static_cast<double>(max_logit)) * inv_temperature);
    const double target = uniform01() * total;
    double cumulative = 0.0;
    for (std::size_t i = 0; i < n_candidates_; ++i) {
        cumulative += std::exp((candidates_[i].logit - static_cast<double>(max_logit)) * inv_temperature);
        if (target < cumulative) return candidates_[i].token;
    }
    return candidates_[n_candidates_ - 1].token;  // rounding left target at the very top
}

void Sampler::compute_logprobs(std::span<const float> logits, int32_t chosen) {
    auto clean = [](float l) { return std::isnan(l) ? neg_inf : l; };
    float max_logit = neg_inf;
    for (float l : logits) max_logit = std::max(max_logit, clean(l));

    // log_softmax(l) = l - max - log(sum exp(l - max)). With no finite maximum
    // (all -inf, or some +inf) the mass sits on the tokens equal to the maximum.
    double log_total = 0.0;
    const bool finite_max = std::isfinite(max_logit);
    if (finite_max) {
        double total = 0.0;
        for (float l : logits) total += std::exp(clean(l) - max_logit);  // float exp, as in keep_top_p
        log_total = std::log(total);
    }
    auto logprob = [&](float l) -> float {
        l = clean(l);
        if (!finite_max) return l == max_logit && max_logit != neg_inf ? 0.0f : neg_inf;
        return static_cast<float>(static_cast<double>(l) - max_logit - log_total);
    };

    chosen_logprob_ = {chosen, logprob(logits[chosen])};

    // Top-N by insertion into a sorted array: N is small (OpenAI allows 20),
    // and most tokens fail the first comparison against the current N-th.
    const std::size_t n_top = top_.size();
    std::size_t filled = 0;
    for (int32_t i = 0; i < n_vocab_ && n_top > 0; ++i) {
        const float l = clean(logits[i]);
        // Ids arrive in increasing order, so a tie never displaces an earlier id.
        if (filled == n_top && !(l > top_[n_top - 1].logprob)) continue;
        std::size_t at = filled < n_top ? filled++ : n_top - 1;
        while (at > 0 && l > top_[at - 1].logprob) {
            top_[at] = top_[at - 1];
            --at;
        }
        top_[at] = {i, l};
    }
    for (auto& t : top_) t.logprob = logprob(t.logprob);  // raw logits held so far
}

SampledLogprobs Sampler::last_logprobs() const {
    return {chosen_logprob_, std::span<const TokenLogprob>(top_.data(), top_.size())};
}

int32_t Sampler::sample(std::span<const float> logits) {
    if (logits.size() != static_cast<std::size_t>(n_vocab_))
        throw std::invalid_argument("Sampler::sample: got " + std::to_string(logits.size()) +
                                    " logits for a vocabulary of " + std::to_string(n_vocab_));
    for (int32_t i = 0; i < n_vocab_; ++i) working_[i] = std::isnan(logits[i]) ? neg_inf : logits[i];
    apply_penalties();
    apply_logit_bias();

    int32_t token = -1;
    if (params_.temperature <= 0.0f) {
        token = argmax_working();
        if (working_[token] == neg_inf) token = -1;
    } else {
        collect_candidates();
        if (n_candidates_ > 0) {
            keep_top_k();
            keep_top_p();
            keep_min_p();
            token = draw();
        }
    }
    if (token < 0) {
        // Penalties and bias left nothing finite: a broken logit row, since
        // validate() forbids banning everything. Stay deterministic.
        token = 0;
        for (int32_t i = 1; i < n_vocab_; ++i)
            if (logits[i] > logits[token] || std::isnan(logits[token])) token = i;
        if (std::isnan(logits[token])) token = 0;
    }
    if (params_.logprobs) compute_logprobs(logits, token);
    return token;
}

}  // namespace kiln
