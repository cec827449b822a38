// Context behaviour on a real model: batching, chunking, overflow, truncation.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/context.h"
#include "test_paths.h"

using namespace kiln;

namespace {

// 40 token ids of the Llama-2 vocabulary (BOS, then English word pieces).
const std::vector<int32_t> kTokens{1,    450,  2030, 767,  750,  1063, 2221, 304,  1371, 278,   3271, 29889, 940,  471,
                                    263,  2217, 16171, 322, 29892, 541, 540,  471,  1603, 263,  1781, 767,   29889, 940,
                                    750,  263,  1407,  4029, 4123, 310, 670,  1914, 29892, 322, 278,  3271};

float max_abs(std::span<const float> a) {
    float m = 0.0f;
    for (float x : a) m = std::max(m, std::fabs(x));
    return m;
}

void check_same_logits(std::span<const float> a, std::span<const float> b, float rel, const char* what) {
    REQUIRE(a.size() == b.size());
    float err = 0.0f;
    for (size_t i = 0; i < a.size(); ++i) err = std::max(err, std::fabs(a[i] - b[i]));
    INFO(what << ": max |diff| " << err << " for logits up to " << max_abs(b));
    CHECK(err <= rel * max_abs(b));
}

std::shared_ptr<Model> model_15m() {
    static auto m = load_model(test::model_path("kiln-test-15m-f16.gguf"), LoadOptions{2});
    return m;
}

}  // namespace

TEST_CASE("model hyper-parameters come from the file") {
    auto m = model_15m();
    const Hparams& h = m->hparams();
    CHECK(h.arch == "llama");
    CHECK(h.n_vocab == 32000);
    CHECK(m->n_vocab() == 32000);
    CHECK(h.n_embd == 288);
    CHECK(h.n_layer == 6);
    CHECK(h.n_head == 6);
    CHECK(h.n_head_kv == 6);
    CHECK(h.n_ff == 768);
    CHECK(h.head_dim == 48);
    CHECK(h.rope.n_rot == 48);
    CHECK(h.rope.freq_base == 10000.0f);
    CHECK(h.rms_eps == doctest::Approx(1e-5));
    CHECK(h.n_ctx_train == 2048);
    CHECK(Context(m).n_ctx() == 2048);  // default: the training context (capped at 4096)
    CHECK(Context(m, ContextOptions{100, 512}).n_batch() == 100);  // a batch never exceeds the context

    auto g = load_model(test::model_path("kiln-test-gqa-q4_k_m.gguf"), LoadOptions{1});
    CHECK(g->hparams().n_head == 8);
    CHECK(g->hparams().n_head_kv == 2);
    CHECK(g->hparams().n_kv_dim() == 64);
}

TEST_CASE("a batch gives the same next-token logits as feeding tokens one at a time") {
    for (const char* file : {"kiln-test-15m-f16.gguf", "kiln-test-gqa-q4_k_m.gguf", "stories260K.gguf"}) {
        auto m = load_model(test::model_path(file), LoadOptions{2});
        std::vector<int32_t> toks = kTokens;
        for (auto& t : toks) t %= int32_t(m->n_vocab());
        Context batch(m, ContextOptions{128, 512});
        Context chunked(m, ContextOptions{128, 7});  // 40 tokens in chunks of 7
        Context single(m, ContextOptions{128, 512});
        std::vector<float> a;
        {
            auto l = batch.eval(toks);
            a.assign(l.begin(), l.end());
        }
        std::vector<float> c;
        {
            auto l = chunked.eval(toks);
            c.assign(l.begin(), l.end());
        }
        std::span<const float> s;
        for (int32_t t : toks) s = single.eval(std::span<const int32_t>(&t, 1));
        check_same_logits(a, s, 1e-3f, file);
        check_same_logits(c, s, 1e-3f, file);
        CHECK(batch.n_past() == 40);
        CHECK(single.n_past() == 40);

        // eval_all: row i is the logits after token i.
        Context all(m, ContextOptions{128, 16});
        const auto rows = all.eval_all(toks);
        REQUIRE(rows.size() == toks.size() * size_t(m->n_vocab()));
        check_same_logits(rows.subspan(39 * size_t(m->n_vocab()), size_t(m->n_vocab())), s, 1e-3f, "eval_all last row");
        Context prefix(m, ContextOptions{128, 512});
        const auto p = prefix.eval(std::span<const int32_t>(toks).first(10));
        check_same_logits(rows.subspan(9 * size_t(m->n_vocab()), size_t(m->n_vocab())), p, 1e-3f, "eval_all row 9");
    }
}

TEST_CASE("a prompt longer than the context is refused with a clear error and the context stays usable") {
    auto m = model_15m();
    Context ctx(m, ContextOptions{16, 8});
    CHECK(ctx.n_ctx() == 16);
    try {
        ctx.eval(std::span<const int32_t>(kTokens).first(20));
        FAIL("expected ContextOverflowError");
    } catch (const ContextOverflowError& e) {
        CHECK(std::string(e.what()) == "prompt is 20 tokens but the context is 16; use -c to raise it");
    }
    CHECK(ctx.n_past() == 0);
    std::vector<float> got;
    {
        auto l = ctx.eval(std::span<const int32_t>(kTokens).first(10));
        got.assign(l.begin(), l.end());
    }
    Context fresh(m, ContextOptions{16, 8});
    check_same_logits(got, fresh.eval(std::span<const int32_t>(kTokens).first(10)), 1e-5f, "after overflow");

    // A continuation that does not fit is refused too, keeping the 10 cached tokens.
    CHECK_THROWS_WITH_AS(ctx.eval(std::span<const int32_t>(kTokens).subspan(10, 7)),
                         "7 more tokens after the 10 already in the context need 17 positions but the context is 16; "
                         "use -c to raise it",
                         ContextOverflowError);
    CHECK(ctx.n_past() == 10);
    {
        auto l = ctx.eval(std::span<const int32_t>(kTokens).subspan(10, 6));
        got.assign(l.begin(), l.end());
    }
    CHECK(ctx.n_past() == 16);
    check_same_logits(got, fresh.eval(std::span<const int32_t>(kTokens).subspan(10, 6)), 1e-5f, "filled to the brim");

    // Bad token ids are refused before anything is evaluated.
    Context c2(m, ContextOptions{16, 8});
    const std::vector<int32_t> bad{1, 450, 32000};
    CHECK_THROWS_AS(c2.eval(bad), std::invalid_argument);
    CHECK(c2.n_past() == 0);
}

TEST_CASE("truncate keeps a prefix for reuse, reset starts over") {
    auto m = model_15m();
    const auto toks = std::span<const int32_t>(kTokens);
    Context ctx(m, ContextOptions{64, 512});
    ctx.eval(toks.first(30));
    ctx.truncate(12);
    CHECK(ctx.n_past() == 12);
    std::vector<float> reused;
    {
        auto l = ctx.eval(toks.subspan(20, 8));  // a different continuation of the 12-token prefix
        reused.assign(l.begin(), l.end());
    }
    std::vector<int32_t> direct(toks.begin(), toks.begin() + 12);
    direct.insert(direct.end(), toks.begin() + 20, toks.begin() + 28);
    Context fresh(m, ContextOptions{64, 512});
    check_same_logits(reused, fresh.eval(direct), 1e-4f, "prefix reuse");

    ctx.reset();
    CHECK(ctx.n_past() == 0);
    {
        auto l = ctx.eval(toks.first(5));
        reused.assign(l.begin(), l.end());
    }
    Context fresh2(m, ContextOptions{64, 512});
    check_same_logits(reused, fresh2.eval(toks.first(5)), 1e-5f, "after reset");
    CHECK_THROWS_AS(ctx.truncate(6), std::invalid_argument);
}

TEST_CASE("F32 and F16 KV caches give nearly the same logits") {
    auto m = model_15m();
    Context a(m, ContextOptions{64, 512, GgmlType::F16});
    Context b(m, ContextOptions{64, 512, GgmlType::F32});
    std::vector<float> la;
    {
        auto l = a.eval(kTokens);
        la.assign(l.begin(), l.end());
    }
    check_same_logits(la, b.eval(kTokens), 1e-2f, "f16 vs f32 cache");
}
