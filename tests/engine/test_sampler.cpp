#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "engine/sampler.h"

using kiln::InvalidSamplingParams;
using kiln::Sampler;
using kiln::SamplingParams;

namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

// Every filter off: the draw sees the full temperature-1 distribution.
SamplingParams plain(uint64_t seed = 1) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

std::vector<float> random_logits(int n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(static_cast<int64_t>(rng() % 2001) - 1000) / 100.0f;
    return v;
}

std::vector<float> log_probs(std::vector<double> p) {
    std::vector<float> v;
    for (double x : p) v.push_back(static_cast<float>(std::log(x)));
    return v;
}

// Samples `n` times and returns how often each token came up.
std::map<int32_t, int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
    std::map<int32_t, int> h;
    for (int i = 0; i < n; ++i) ++h[s.sample(logits)];
    return h;
}

void check_frequencies(const std::map<int32_t, int>& h, const std::map<int32_t, double>& expected, int n) {
    for (const auto& [token, count] : h) {
        CAPTURE(token);
        REQUIRE_MESSAGE(expected.count(token), "token " << token << " was drawn but is outside the kept set");
    }
    for (const auto& [token, p] : expected) {
        CAPTURE(token);
        const double got = h.count(token) ? static_cast<double>(h.at(token)) / n : 0.0;
        CHECK(std::abs(got - p) < 0.02);
    }
}

int32_t argmax(const std::vector<float>& v) {
    int32_t best = 0;
    for (int32_t i = 1; i < static_cast<int32_t>(v.size()); ++i)
        if (v[i] > v[best]) best = i;
    return best;
}

}  // namespace

TEST_CASE("sampler: temperature 0 is argmax, lowest id on ties") {
    SamplingParams p;
    p.temperature = 0.0f;
    for (uint64_t seed = 0; seed < 20; ++seed) {
        auto logits = random_logits(1000, seed);
        Sampler s(p, 1000);
        CHECK(s.sample(logits) == argmax(logits));
    }
    Sampler s(p, 6);
    CHECK(s.sample(std::vector<float>{1, 5, 2, 5, 5, 0}) == 1);
    CHECK(s.sample(std::vector<float>{-3, -1, -1, -2, -7, -1}) == 1);
    // NaN is never the argmax.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    CHECK(s.sample(std::vector<float>{nan, 1, nan, 2, nan, 0}) == 3);
}

TEST_CASE("sampler: top_k = 1 equals greedy at any temperature") {
    SamplingParams p = plain(5);
    p.top_k = 1;
    p.temperature = 1.5f;
    Sampler s(p, 500);
    for (uint64_t seed = 0; seed < 50; ++seed) {
        auto logits = random_logits(500, 100 + seed);
        CHECK(s.sample(logits) == argmax(logits));
    }
}

TEST_CASE("sampler: the same seed gives the same sequence, another seed another") {
    auto run = [](uint64_t seed) {
        SamplingParams p;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8
        p.seed = seed;
        p.min_p = 0.0f;
        Sampler s(p, 300);
        std::vector<int32_t> out;
        for (int i = 0; i < 64; ++i) {
            auto logits = random_logits(300, 1000 + i);
            for (auto& x : logits) x /= 4.0f;  // flat enough that the draw matters
            out.push_back(s.sample(logits));
        }
        return out;
    };
    const auto a = run(42);
    CHECK(a == run(42));
    CHECK(a != run(43));
    CHECK(std::set<int32_t>(a.begin(), a.end()).size() > 10);

    // reset() restarts the random sequence.
    SamplingParams p = plain(9);
    Sampler s(p, 300);
    const auto logits = random_logits(300, 3);
    std::vector<int32_t> first, second;
    for (int i = 0; i < 32; ++i) first.push_back(s.sample(logits));
    s.reset();
    for (int i = 0; i < 32; ++i) second.push_back(s.sample(logits));
    CHECK(first == second);
}

TEST_CASE("sampler: a fixed seed draws a fixed sequence (platform-independent draw)") {
    // mt19937_64's output is fixed by the C++ standard and the draw uses only
    // its raw bits; this sequence must not change between platforms or releases.
    SamplingParams p = plain(1234);
    Sampler s(p, 4);
    const auto logits = log_probs({0.4, 0.3, 0.2, 0.1});
    std::vector<int32_t> got;
    for (int i = 0; i < 16; ++i) got.push_back(s.sample(logits));
    const std::vector<int32_t> expected = {3, 0, 3, 3, 0, 3, 2, 3, 0, 2, 3, 0, 1, 3, 0, 2};
    CHECK(got == expected);
}

TEST_CASE("sampler: unfiltered draws follow the softmax") {
    Sampler s(plain(11), 4);
    const int n = 40000;
    check_frequencies(histogram(s, log_probs({0.4, 0.3, 0.2, 0.1}), n), {{0, 0.4}, {1, 0.3}, {2, 0.2}, {3, 0.1}}, n);
}

TEST_CASE("sampler: temperature reshapes the distribution after the filters") {
    // logits 0 and ln 4: at T = 2 the weights are 1 and 2.
    SamplingParams p = plain(12);
    p.temperature = 2.0f;
    Sampler s(p, 2);
    const int n = 30000;
    check_frequencies(histogram(s, {0.0f, std::log(4.0f)}, n), {{0, 1.0 / 3}, {1, 2.0 / 3}}, n);
}

TEST_CASE("sampler: top_p keeps the smallest prefix reaching p") {
    const auto logits = log_probs({0.10, 0.50, 0.15, 0.25});  // sorted: 1 (.5), 3 (.25), 2 (.15), 0 (.10)
    const int n = 30000;
    SUBCASE("p = 0.7 keeps {1, 3}") {
        SamplingParams p = plain(21);
        p.top_p = 0.7f;
        Sampler s(p, 4);
        check_frequencies(histogram(s, logits, n), {{1, 0.5 / 0.75}, {3, 0.25 / 0.75}}, n);
    }
    SUBCASE("p = 0.8 keeps {1, 3, 2}") {
        SamplingParams p = plain(22);
        p.top_p = 0.8f;
        Sampler s(p, 4);
        check_frequencies(histogram(s, logits, n), {{1, 0.5 / 0.9}, {3, 0.25 / 0.9}, {2, 0.15 / 0.9}}, n);
    }
    SUBCASE("p = 0.4 and p = 0 keep only the most likely") {
        for (float top_p : {0.4f, 0.0f}) {
            SamplingParams p = plain(23);
            p.top_p = top_p;
            Sampler s(p, 4);
            check_frequencies(histogram(s, logits, 1000), {{1, 1.0}}, 1000);
        }
    }
}

TEST_CASE("sampler: min_p keeps tokens with p >= min_p * p_max") {
    const auto logits = log_probs({0.10, 0.50, 0.15, 0.25});
    const int n = 30000;
    SUBCASE("min_p = 0.25: threshold 0.125 keeps {1, 3, 2}") {
        SamplingParams p = plain(31);
        p.min_p = 0.25f;
        Sampler s(p, 4);
        check_frequencies(histogram(s, logits, n), {{1, 0.5 / 0.9}, {3, 0.25 / 0.9}, {2, 0.15 / 0.9}}, n);
    }
    SUBCASE("min_p = 0.4: threshold 0.2 keeps {1, 3}") {
        SamplingParams p = plain(32);
        p.min_p = 0.4f;
        Sampler s(p, 4);
        check_frequencies(histogram(s, logits, n), {{1, 0.5 / 0.75}, {3, 0.25 / 0.75}}, n);
    }
}

TEST_CASE("sampler: top_k, top_p and min_p chain in llama.cpp's order") {
    // p = .30 .25 .20 .15 .10. top_k 4 drops .10, leaving mass .9; top_p 0.6 on
    // that: cumulative .333, .611 -> keeps {0, 1}. min_p 0.9 then needs
    // p >= .9 * .30 = .27, which .25 is not -> only {0}.
    const auto logits = log_probs({0.30, 0.25, 0.20, 0.15, 0.10});
    const int n = 20000;
    SamplingParams p = plain(41);
    p.top_k = 4;
    p.top_p = 0.6f;
    Sampler s(p, 5);
    check_frequencies(histogram(s, logits, n), {{0, 0.30 / 0.55}, {1, 0.25 / 0.55}}, n);

    p.min_p = 0.9f;
    Sampler s2(p, 5);
    check_frequencies(histogram(s2, logits, 1000), {{0, 1.0}}, 1000);

    // Without top-k the same top_p needs three tokens: .3+.25 = .55 < .6.
    p = plain(42);
    p.top_p = 0.6f;
    Sampler s3(p, 5);
    check_frequencies(histogram(s3, logits, n), {{0, 0.30 / 0.75}, {1, 0.25 / 0.75}, {2, 0.20 / 0.75}}, n);
}

TEST_CASE("sampler: penalties change the logits as llama.cpp and OpenAI define them") {
    SamplingParams p = plain(51);
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    Sampler s(p, 4);
    for (int32_t t : {0, 1, 0, 2}) s.accept(t);
    s.sample(std::vector<float>{2.0f, -1.0f, 0.5f, 3.0f});
    auto adj = s.adjusted_logits();
    // token 0: twice, positive: 2 / 2 - (2 * 0.25 + 0.5)
    CHECK(adj[0] == doctest::Approx(0.0f));
    // token 1: once, negative: -1 * 2 - (0.25 + 0.5)
    CHECK(adj[1] == doctest::Approx(-2.75f));
    // token 2: once: 0.5 / 2 - 0.75
    CHECK(adj[2] == doctest::Approx(-0.5f));
    // token 3: never seen
    CHECK(adj[3] == 3.0f);

    SUBCASE("only the last penalty_last_n tokens count") {
        SamplingParams q = plain(52);
        q.repeat_penalty = 2.0f;
        q.penalty_last_n = 2;
        Sampler w(q, 4);
        for (int32_t t : {0, 0, 1, 2}) w.accept(t);  // the window holds 1, 2
        w.sample(std::vector<float>{2.0f, 2.0f, 2.0f, 2.0f});
        CHECK(w.adjusted_logits()[0] == 2.0f);
        CHECK(w.adjusted_logits()[1] == 1.0f);
        CHECK(w.adjusted_logits()[2] == 1.0f);
        w.reset();
        w.sample(std::vector<float>{2.0f, 2.0f, 2.0f, 2.0f});
        CHECK(w.adjusted_logits()[1] == 2.0f);
    }
    SUBCASE("penalties steer greedy decoding") {
        SamplingParams q;
        q.temperature = 0.0f;
        q.frequency_penalty = 1.0f;
        Sampler g(q, 3);
        const std::vector<float> logits = {3.0f, 2.5f, 0.0f};
        CHECK(g.sample(logits) == 0);
        g.accept(0);
        CHECK(g.sample(logits) == 1);  // 3 - 1 < 2.5
    }
    SUBCASE("penalty_last_n = 0 turns them off") {
        SamplingParams q = plain(53);
        q.repeat_penalty = 3.0f;
        q.penalty_last_n = 0;
        Sampler w(q, 2);
        w.accept(0);
        w.sample(std::vector<float>{1.0f, 1.0f});
        CHECK(w.adjusted_logits()[0] == 1.0f);
    }
}

TEST_CASE("sampler: logit bias adds to logits and -inf bans a token") {
    SamplingParams p = plain(61);
    p.logit_bias = {{2, -inf}, {1, 1.5f}, {1, 0.5f}};
    Sampler s(p, 3);
    const std::vector<float> logits = {0.0f, 0.0f, 5.0f};
    s.sample(logits);
    CHECK(s.adjusted_logits()[1] == 2.0f);
    CHECK(s.adjusted_logits()[2] == -inf);
    const auto h = histogram(s, logits, 5000);
    CHECK(h.count(2) == 0);
    CHECK(h.count(0) > 0);
    CHECK(h.at(1) > h.at(0));  // bias +2: e^2 times as likely

    p.temperature = 0.0f;
    Sampler g(p, 3);
    CHECK(g.sample(logits) == 1);
}

TEST_CASE("sampler: invalid parameters throw, naming the parameter") {
    auto bad = [](auto edit, const char* param, int32_t n_vocab = 100) {
        SamplingParams p;
        edit(p);
        CAPTURE(param);
        try {
            Sampler s(p, n_vocab);
            FAIL("no exception");
        } catch (const InvalidSamplingParams& e) {
            CHECK(e.param() == param);
            CHECK(std::string(e.what()).find(param) != std::string::npos);
        }
    };
    const float nan = std::numeric_limits<float>::quiet_NaN();
    bad([](SamplingParams& p) { p.temperature = -1.0f; }, "temperature");
    bad([&](SamplingParams& p) { p.temperature = nan; }, "temperature");
    bad([](SamplingParams& p) { p.temperature = inf; }, "temperature");
    bad([](SamplingParams& p) { p.top_k = -1; }, "top_k");
    bad([](SamplingParams& p) { p.top_p = 5.0f; }, "top_p");
    bad([](SamplingParams& p) { p.top_p = -0.1f; }, "top_p");
    bad([&](SamplingParams& p) { p.top_p = nan; }, "top_p");
    bad([](SamplingParams& p) { p.min_p = 1.5f; }, "min_p");
    bad([](SamplingParams& p) { p.repeat_penalty = 0.0f; }, "repeat_penalty");
    bad([](SamplingParams& p) { p.repeat_penalty = -1.0f; }, "repeat_penalty");
    bad([&](SamplingParams& p) { p.presence_penalty = nan; }, "presence_penalty");
    bad([](SamplingParams& p) { p.frequency_penalty = -inf; }, "frequency_penalty");
    bad([](SamplingParams& p) { p.penalty_last_n = -1; }, "penalty_last_n");
    bad([](SamplingParams& p) { p.top_logprobs = -1; }, "top_logprobs");
    bad([](SamplingParams& p) { p.top_logprobs = 101; }, "top_logprobs");
    bad([](SamplingParams& p) { p.logit_bias = {{100, 1.0f}}; }, "logit_bias");
    bad([](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; }, "logit_bias");
    bad([&](SamplingParams& p) { p.logit_bias = {{3, nan}}; }, "logit_bias");
    bad([](SamplingParams& p) { p.logit_bias = {{3, inf}}; }, "logit_bias");
    bad([](SamplingParams& p) { p.logit_bias = {{0, -inf}, {1, -inf}, {0, -inf}}; }, "logit_bias", 2);
    bad([](SamplingParams&) {}, "n_vocab", 0);

    // The edges of each range are accepted.
    SamplingParams ok;
    ok.temperature = 0.0f;
    ok.top_p = 1.0f;
    ok.min_p = 1.0f;
    ok.top_k = 1 << 30;
    ok.top_logprobs = 100;
    ok.logit_bias = {{0, -inf}};
    CHECK_NOTHROW(Sampler(ok, 100));

    Sampler s(SamplingParams{}, 10);
    CHECK_THROWS_AS(s.sample(std::vector<float>(9, 0.0f)), std::invalid_argument);
    CHECK_THROWS_AS(s.accept(10), std::out_of_range);
    CHECK_THROWS_AS(s.accept(-1), std::out_of_range);
}

TEST_CASE("sampler: logprobs are the log-softmax of the raw logits") {
    SamplingParams p;
    p.temperature = 0.0f;
    p.logprobs = true;
    p.top_logprobs = 2;
    p.logit_bias = {{2, -inf}};  // bias changes the choice, not the reported probabilities
    Sampler s(p, 4);
    const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 2.0f};
    const int32_t token = s.sample(logits);
    CHECK(token == 1);
    const double lse = std::log(std::exp(1.0) + 2 * std::exp(2.0) + std::exp(3.0));
    const auto lp = s.last_logprobs();
    CHECK(lp.chosen.token == 1);
    CHECK(lp.chosen.logprob == doctest::Approx(2.0 - lse));
    REQUIRE(lp.top.size() == 2);
    CHECK(lp.top[0].token == 2);
    CHECK(lp.top[0].logprob == doctest::Approx(3.0 - lse));
    CHECK(lp.top[1].token == 1);  // tie with 3: lowest id first
    CHECK(lp.top[1].logprob == doctest::Approx(2.0 - lse));

    // On a large vocabulary the top-N equal a full sort, and probabilities sum to 1.
    SamplingParams q = plain(71);
    q.top_logprobs = 20;
    Sampler big(q, 5000);
    const auto row = random_logits(5000, 77);
    big.sample(row);
    std::vector<int32_t> order(5000);
    for (int32_t i = 0; i < 5000; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    const auto top = big.last_logprobs().top;
    REQUIRE(top.size() == 20);
    for (int i = 0; i < 20; ++i) CHECK(top[i].token == order[i]);
    const double lse_big = [&] {
        double m = *std::max_element(row.begin(), row.end()), t = 0;
        for (float x : row) t += std::exp(x - m);
        return m + std::log(t);
    }();
    for (int i = 0; i < 20; ++i) CHECK(top[i].logprob == doctest::Approx(row[order[i]] - lse_big));
    const auto chosen = big.last_logprobs().chosen;
    CHECK(chosen.logprob == doctest::Approx(row[chosen.token] - lse_big));

    // logprobs without top_logprobs: only the chosen token.
    SamplingParams r = plain(72);
    r.logprobs = true;
    Sampler only(r, 4);
    const int32_t t2 = only.sample(logits);
    CHECK(only.last_logprobs().top.empty());
    CHECK(only.last_logprobs().chosen.token == t2);
    CHECK(only.last_logprobs().chosen.logprob == doctest::Approx(logits[t2] - lse));
}

TEST_CASE("sampler: broken logit rows never crash and stay deterministic") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Sampler s(plain(81), 4);
    // NaN logits are never drawn.
    auto h = histogram(s, {nan, 0.0f, nan, 0.0f}, 2000);
    CHECK(h.count(0) == 0);
    CHECK(h.count(2) == 0);
    // +inf logits share all the probability.
    h = histogram(s, {inf, 0.0f, inf, 100.0f}, 2000);
    CHECK(h.count(1) + h.count(3) == 0);
    CHECK(h[0] > 800);
    CHECK(h[2] > 800);
    // Nothing finite at all: the lowest id, never an out-of-range token.
    CHECK(s.sample(std::vector<float>{nan, nan, nan, nan}) == 0);
    CHECK(s.sample(std::vector<float>{-inf, -inf, -inf, -inf}) == 0);
}

TEST_CASE("sampler: top_p on a large flat vocabulary keeps exactly the brute-force nucleus") {
    // Flat logits make the nucleus hundreds of tokens long, so the partial
    // sort has to widen its window several times.
    const int V = 20000;
    std::vector<float> logits = random_logits(V, 99);
    for (auto& x : logits) x /= 3.0f;
    std::vector<int32_t> order(V);
    for (int32_t i = 0; i < V; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    double total = 0.0;
    for (float x : logits) total += std::exp(static_cast<double>(x));
    const double top_p = 0.5;
    std::vector<int32_t> nucleus;
    double cumulative = 0.0;
    for (int32_t t : order) {
        nucleus.push_back(t);
        cumulative += std::exp(static_cast<double>(logits[t]));
        if (cumulative >= top_p * total) break;
    }
    REQUIRE(nucleus.size() > 600);  // past the first two windows (64, 512)
    const std::set<int32_t> inside(nucleus.begin(), nucleus.end());
    // The tail of the nucleus: the tokens a too-short cut would lose.
    const std::set<int32_t> tail(nucleus.end() - static_cast<std::ptrdiff_t>(nucleus.size() / 10), nucleus.end());

    SamplingParams p = plain(91);
    p.top_p = static_cast<float>(top_p);
    Sampler s(p, V);
    int outside = 0, in_tail = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        const int32_t t = s.sample(logits);
        outside += inside.count(t) == 0;
        in_tail += tail.count(t) != 0;
    }
    CHECK(outside == 0);
    double tail_mass = 0.0;
    for (int32_t t : tail) tail_mass += std::exp(static_cast<double>(logits[t]));
    const double expected_tail = tail_mass / cumulative;
    CHECK(std::abs(static_cast<double>(in_tail) / n - expected_tail) < 0.02);
}
