// kiln's perplexity against llama-perplexity's figures in
// ../shared/reference/perplexity.md (eval.txt, -c 256): within 0.5% for every model.
#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "engine/context.h"
#include "engine/perplexity.h"
#include "engine/tokenizer.h"
#include "test_paths.h"

using namespace kiln;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// "| kiln-test-15m-f16.gguf | 400.9133 | 11.84762 |" -> 400.9133
double reference_ppl(const std::string& model) {
    const std::string table = read_file(test::reference_path("perplexity.md"));
    std::smatch m;
    const std::regex row("\\| " + std::regex_replace(model, std::regex("\\."), "\\.") + " \\| ([0-9.]+) \\|");
    REQUIRE_MESSAGE(std::regex_search(table, m, row), "no perplexity.md row for " << model);
    return std::stod(m[1]);
}

void check_perplexity(const std::string& model_file) {
    auto model = load_model(test::model_path(model_file), LoadOptions{2});
    auto tokenizer = Tokenizer::from_gguf(model->gguf());
    ContextOptions co;
    co.n_ctx = 256;
    co.n_batch = 256;
    Context ctx(model, co);
    const auto tokens = tokenizer->encode(read_file(test::reference_path("eval.txt")), true, false);
    const PerplexityResult r = perplexity(ctx, tokens, 256, tokenizer->bos());
    const double expected = reference_ppl(model_file);
    MESSAGE(model_file << ": kiln " << r.ppl << " +/- " << r.ppl_error << ", llama.cpp " << expected);
    CHECK(r.n_chunks == 240);  // perplexity.md: 240 chunks of 256 tokens
    CHECK(std::abs(r.ppl - expected) / expected < 0.005);
    CHECK(r.ppl_error > 0);
}

}  // namespace

TEST_CASE("perplexity: kiln-test-15m-f16 matches llama.cpp") { check_perplexity("kiln-test-15m-f16.gguf"); }
TEST_CASE("perplexity: kiln-test-15m-q8_0 matches llama.cpp") { check_perplexity("kiln-test-15m-q8_0.gguf"); }
TEST_CASE("perplexity: kiln-test-15m-q4_0 matches llama.cpp") { check_perplexity("kiln-test-15m-q4_0.gguf"); }
TEST_CASE("perplexity: kiln-test-15m-q5_0 matches llama.cpp") { check_perplexity("kiln-test-15m-q5_0.gguf"); }
TEST_CASE("perplexity: kiln-test-gqa-f16 matches llama.cpp") { check_perplexity("kiln-test-gqa-f16.gguf"); }
TEST_CASE("perplexity: kiln-test-gqa-q2_k matches llama.cpp") { check_perplexity("kiln-test-gqa-q2_k.gguf"); }
TEST_CASE("perplexity: kiln-test-gqa-q3_k_m matches llama.cpp") { check_perplexity("kiln-test-gqa-q3_k_m.gguf"); }
TEST_CASE("perplexity: kiln-test-gqa-q4_k_m matches llama.cpp") { check_perplexity("kiln-test-gqa-q4_k_m.gguf"); }
TEST_CASE("perplexity: kiln-test-gqa-q5_k_m matches llama.cpp") { check_perplexity("kiln-test-gqa-q5_k_m.gguf"); }
TEST_CASE("perplexity: kiln-test-gqa-q6_k matches llama.cpp") { check_perplexity("kiln-test-gqa-q6_k.gguf"); }

TEST_CASE("perplexity: too short a text is a clear error") {
    auto model = load_model(test::model_path("stories260K.gguf"), LoadOptions{1});
    ContextOptions co;
    co.n_ctx = 64;
    Context ctx(model, co);
    std::vector<int32_t> tokens(100, 1);
    CHECK_THROWS_WITH_AS(perplexity(ctx, tokens, 64, 1), doctest::Contains("at least 128"), std::invalid_argument);
}
