// llama.cpp's tokenizer test vectors (../shared/models/tokenizer-tests): every input must
// give exactly the ids of its .out line, tokenized without BOS and without special tokens.
#include <doctest/doctest.h>

#include <sstream>

#include "tokenizer_test_util.h"

using namespace kiln;

namespace {

// As llama.cpp's test-tokenizer-0 reads them: inputs are separated by
// "\n__ggml_vocab_test__\n" (the file ends with one, leaving nothing after it) and the
// .out file holds one line of space-separated ids per input, an empty line for "".
std::vector<std::string> split_inputs(const std::string& all) {
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> inputs;
    size_t pos = 0;
    for (size_t hit; (hit = all.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
        inputs.push_back(all.substr(pos, hit - pos));
    if (pos < all.size()) inputs.push_back(all.substr(pos));
    return inputs;
}

std::vector<int32_t> parse_ids(const std::string& line) {
    std::istringstream ss(line);
    std::vector<int32_t> ids;
    for (long v; ss >> v;) ids.push_back(int32_t(v));
    return ids;
}

std::string show(const std::vector<int32_t>& ids) {
    std::string s;
    for (auto id : ids) s += std::to_string(id) + " ";
    return s;
}

void run_vector_set(const std::string& set, const std::string& vocab) {
    const std::string base = test::model_path("tokenizer-tests/ggml-vocab-" + set + ".gguf");
    const auto inputs = split_inputs(test::read_file(base + ".inp"));
    const auto expected = test::read_lines(base + ".out");
    REQUIRE(inputs.size() == 46);
    REQUIRE(expected.size() == inputs.size());

    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-" + vocab + ".gguf");
    size_t passed = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const auto got = tok->encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
        const auto want = parse_ids(expected[i]);
        if (got == want) {
            ++passed;
        } else {
            CAPTURE(i);
            CAPTURE(inputs[i]);
            CHECK_MESSAGE(show(got) == show(want), "input " << i);
        }
    }
    MESSAGE(set << ": " << passed << "/" << inputs.size() << " inputs match llama.cpp");
    CHECK(passed == inputs.size());
}

}  // namespace

TEST_CASE("tokenizer vectors: llama-spm") { run_vector_set("llama-spm", "llama-spm"); }
TEST_CASE("tokenizer vectors: phi-3") { run_vector_set("phi-3", "phi-3"); }
TEST_CASE("tokenizer vectors: llama-bpe") { run_vector_set("llama-bpe", "llama-bpe"); }
TEST_CASE("tokenizer vectors: qwen2") { run_vector_set("qwen2", "qwen2"); }
TEST_CASE("tokenizer vectors: deepseek-r1-qwen") { run_vector_set("deepseek-r1-qwen", "qwen2"); }
TEST_CASE("tokenizer vectors: gpt-2") { run_vector_set("gpt-2", "gpt-2"); }
TEST_CASE("tokenizer vectors: deepseek-llm") { run_vector_set("deepseek-llm", "deepseek-llm"); }
TEST_CASE("tokenizer vectors: falcon") { run_vector_set("falcon", "falcon"); }

TEST_CASE("tokenizer vectors: the negative control fails (qwen2 vocabulary on llama-bpe inputs)") {
    const std::string base = test::model_path("tokenizer-tests/ggml-vocab-llama-bpe.gguf");
    const auto inputs = split_inputs(test::read_file(base + ".inp"));
    const auto expected = test::read_lines(base + ".out");
    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-qwen2.gguf");
    size_t passed = 0;
    for (size_t i = 0; i < inputs.size(); ++i)
        passed += tok->encode(inputs[i], false, false) == parse_ids(expected[i]);
    MESSAGE("qwen2 vocabulary on llama-bpe inputs: " << passed << "/" << inputs.size());
    CHECK(passed < inputs.size());
}
