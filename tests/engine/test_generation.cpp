// Session: prefix reuse gives the same tokens as a fresh evaluation, stop
// strings and max_tokens end generation, and the reference continuation comes out.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/generation.h"
#include "test_paths.h"

using namespace kiln;

namespace {

struct Fixture {
    std::shared_ptr<Model> model = load_model(test::model_path("kiln-test-15m-q8_0.gguf"), LoadOptions{2});
    std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(model->gguf());
    Context ctx{model, ContextOptions{512, 64, GgmlType::F16}};
    Session session{ctx, *tokenizer};

    GenerationRequest greedy(const std::string& prompt, int max_tokens) {
        GenerationRequest r;
        r.prompt = tokenizer->encode(prompt, true, false);
        r.max_tokens = max_tokens;
        r.sampling.temperature = 0;
        return r;
    }
};

nlohmann::json first_reference(const std::string& file) {
    std::ifstream in(test::reference_path(file));
    std::string line;
    std::getline(in, line);
    return nlohmann::json::parse(line);
}

}  // namespace

TEST_CASE("generation: greedy text equals llama.cpp's reference continuation") {
    Fixture f;
    const auto ref = first_reference("kiln-test-15m-q8_0.greedy.jsonl");
    std::string streamed;
    auto r = f.session.generate(f.greedy(ref["prompt"], 64), [&](std::string_view t) {
        streamed += t;
        return true;
    });
    CHECK(r.text == streamed);
    CHECK(r.text == ref["greedy_text"].get<std::string>());
    CHECK(r.tokens == ref["greedy_ids"].get<std::vector<int32_t>>());
    CHECK(r.finish == FinishReason::Stop);  // the reference ends with EOS
}

TEST_CASE("generation: a cached prefix is reused and gives the same answer") {
    Fixture f;
    auto noop = [](std::string_view) { return true; };
    auto first = f.session.generate(f.greedy("The president said that the new law would", 20), noop);
    CHECK(first.n_prompt_evaluated == first.n_prompt);
    // Same prompt again: everything but the last prompt token comes from the cache.
    auto again = f.session.generate(f.greedy("The president said that the new law would", 20), noop);
    CHECK(again.n_prompt_evaluated == 1);
    CHECK(again.tokens == first.tokens);
    // A longer prompt extending the cached one only evaluates the new tokens.
    auto longer_req = f.greedy("The president said that the new law would be", 10);
    auto longer = f.session.generate(longer_req, noop);
    CHECK(longer.n_prompt_evaluated < longer.n_prompt);
    f.session.reset();
    auto fresh = f.session.generate(longer_req, noop);
    CHECK(fresh.n_prompt_evaluated == fresh.n_prompt);
    CHECK(fresh.tokens == longer.tokens);
}

TEST_CASE("generation: max_tokens gives finish reason length, a stop string is not emitted") {
    Fixture f;
    auto noop = [](std::string_view) { return true; };
    auto r = f.session.generate(f.greedy("The old man", 3), noop);
    CHECK(r.tokens.size() == 3);
    CHECK(r.finish == FinishReason::Length);

    const auto ref = first_reference("kiln-test-15m-q8_0.greedy.jsonl");
    const std::string full = ref["greedy_text"];  // ", who was in the kitchen, ..."
    auto req = f.greedy(ref["prompt"], 64);
    req.stop = {"kitchen"};
    auto s = f.session.generate(req, noop);
    CHECK(s.finish == FinishReason::Stop);
    CHECK(s.text == full.substr(0, full.find("kitchen")));
}

TEST_CASE("generation: on_text returning false cancels") {
    Fixture f;
    int calls = 0;
    auto r = f.session.generate(f.greedy("Once upon a time, there was a little girl who", 50), [&](std::string_view) {
        return ++calls < 2;
    });
    CHECK(r.finish == FinishReason::Cancelled);
    CHECK(calls == 2);
}

TEST_CASE("generation: a prompt longer than the context is a clear error and the session stays usable") {
    Fixture f;
    GenerationRequest r = f.greedy("", 1);
    r.prompt.assign(600, 450);
    CHECK_THROWS_WITH_AS(f.session.generate(r, [](std::string_view) { return true; }),
                         doctest::Contains("prompt is 600 tokens but the context is 512"), ContextOverflowError);
    auto ok = f.session.generate(f.greedy("The old man", 5), [](std::string_view) { return true; });
    CHECK(ok.tokens.size() == 5);
}
