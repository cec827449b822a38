// Random Llama models: a tiny-shaped file per mix, read back with the GGUF
// reader, loaded and run by the engine, with the vocabulary of a real model.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/tokenizer.h"
#include "formats/gguf.h"
#include "formats/quant_traits.h"
#include "llama_tensor_role.h"
#include "models/random_llama.h"
#include "test_paths.h"

using namespace kiln;

namespace {

const std::string kVocab = "kiln-test-15m-q8_0.gguf";

RandomLlamaShape tiny_shape() {
    RandomLlamaShape s;
    s.n_layer = 2;
    s.n_embd = 256;
    s.n_ff = 512;
    s.n_head = 4;
    s.n_ctx = 128;
    return s;
}

struct TempDir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("kiln_random_model_" + std::to_string(::getpid()));
    TempDir() { std::filesystem::create_directories(path); }
    ~TempDir() { std::filesystem::remove_all(path); }
};

std::string write_random(const GgufFile& vocab, const RandomLlamaSpec& spec, const std::filesystem::path& path) {
    random_llama_writer(vocab, spec).write(path.string());
    return path.string();
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("random model: every mix writes the llama-quantize types, loads, and gives finite logits") {
    const GgufFile vocab = GgufFile::open(test::model_path(kVocab));
    const TempDir dir;
    for (const QuantMix& mix : all_quant_mixes()) {
        CAPTURE(mix.name);
        RandomLlamaSpec spec{tiny_shape(), &mix, 1};
        const std::string path = write_random(vocab, spec, dir.path / (std::string(mix.name) + ".gguf"));

        const GgufFile f = GgufFile::open(path);
        CHECK(f.get_string("general.architecture") == "llama");
        CHECK(f.get_string("general.name")->find("random") != std::string::npos);
        CHECK(f.get_uint("general.file_type") == mix.file_type);
        CHECK(f.get_int("llama.block_count") == 2);
        CHECK(f.get_int("llama.embedding_length") == 256);
        CHECK(f.get_int("llama.feed_forward_length") == 512);
        CHECK(f.get_int("llama.attention.head_count") == 4);
        CHECK(f.get_int("llama.attention.head_count_kv") == 4);
        CHECK(f.get_float("llama.rope.freq_base") == 10000.0);
        CHECK(f.get_float("llama.attention.layer_norm_rms_epsilon") == doctest::Approx(1e-5));
        CHECK(f.tensors().size() == 3 + 2 * 9);
        for (const GgufTensorInfo& t : f.tensors()) {
            CAPTURE(t.name);
            const auto role = test::llama_tensor_role(t.name);
            REQUIRE(role.has_value());
            CHECK(quant_traits(t.type).name ==
                  std::string(quant_traits(quant_mix_type(mix, role->first, role->second, 2)).name));
        }
        CHECK(f.find_tensor("token_embd.weight")->ne[1] == 32000);

        auto model = load_model(path, LoadOptions{2});
        CHECK(model->n_vocab() == 32000);
        Context ctx(model, ContextOptions{64});
        const std::vector<int32_t> tokens = {1, 450, 4996, 17354, 1701, 29916};
        const std::span<const float> logits = ctx.eval_all(tokens);
        REQUIRE(logits.size() == tokens.size() * 32000);
        bool finite = true;
        float lo = logits[0], hi = logits[0];
        for (float x : logits) {
            finite = finite && std::isfinite(x);
            lo = std::min(lo, x);
            hi = std::max(hi, x);
        }
        CHECK(finite);
        CHECK(hi - lo > 0.1f);  // the weights are not all alike
        CHECK(hi - lo < 100.0f);
    }
}

TEST_CASE("random model: the copied vocabulary tokenizes as the source file does") {
    for (const char* source : {"kiln-test-15m-q8_0.gguf", "kiln-test-gqa-q4_k_m.gguf"}) {
        CAPTURE(source);
        const GgufFile vocab = GgufFile::open(test::model_path(source));
        const TempDir dir;
        RandomLlamaSpec spec{tiny_shape(), find_quant_mix("q4_0"), 0};
        const GgufFile f = GgufFile::open(write_random(vocab, spec, dir.path / "m.gguf"));
        int copied = 0;
        for (const GgufKeyValue& kv : vocab.metadata()) {
            if (kv.key.rfind("tokenizer.", 0) != 0) continue;
            CAPTURE(kv.key);
            REQUIRE(f.find(kv.key) != nullptr);
            CHECK(f.find(kv.key)->summary() == kv.value.summary());
            ++copied;
        }
        CHECK(copied >= 5);  // model, tokens, scores, token types, bos/eos ids
        CHECK(f.get_string_array("tokenizer.ggml.tokens") == vocab.get_string_array("tokenizer.ggml.tokens"));
        CHECK(f.get_float_array("tokenizer.ggml.scores") == vocab.get_float_array("tokenizer.ggml.scores"));
        const auto a = Tokenizer::from_gguf(vocab), b = Tokenizer::from_gguf(f);
        for (const char* text : {"Hello world! Once upon a time, in a land far away…", "  x=1; déjà vu <s> 12345"}) {
            CAPTURE(text);
            CHECK(a->encode(text, true, false) == b->encode(text, true, false));
            CHECK(a->encode(text, false, true) == b->encode(text, false, true));
        }
    }
}

TEST_CASE("random model: the seed decides the bytes") {
    const GgufFile vocab = GgufFile::open(test::model_path(kVocab));
    const TempDir dir;
    RandomLlamaSpec spec{tiny_shape(), find_quant_mix("q4_k_m"), 5};
    const auto a = read_bytes(write_random(vocab, spec, dir.path / "a.gguf"));
    const auto b = read_bytes(write_random(vocab, spec, dir.path / "b.gguf"));
    spec.seed = 6;
    const auto c = read_bytes(write_random(vocab, spec, dir.path / "c.gguf"));
    CHECK(a.size() > 1000000);
    CHECK(a == b);
    CHECK(a.size() == c.size());
    CHECK(a != c);
}

TEST_CASE("random model: a GQA shape gives the tensors, shapes and types of the llama-quantize file") {
    // kiln-test-gqa-q4_k_m: 5 layers, n_embd 256, n_ff 768, 8 heads, 2 KV heads.
    const GgufFile real = GgufFile::open(test::model_path("kiln-test-gqa-q4_k_m.gguf"));
    RandomLlamaSpec spec;
    spec.shape = {5, 256, 768, 8, 2, 2048};
    spec.mix = find_quant_mix("q4_k_m");
    const GgufFile f = GgufFile::from_bytes(random_llama_writer(real, spec).to_bytes());
    REQUIRE(f.tensors().size() == real.tensors().size());
    for (const GgufTensorInfo& t : real.tensors()) {
        CAPTURE(t.name);
        const GgufTensorInfo* r = f.find_tensor(t.name);
        REQUIRE(r != nullptr);
        CHECK(r->type == t.type);
        CHECK(r->ne == t.ne);
        CHECK(r->n_bytes == t.n_bytes);
    }
}

TEST_CASE("random model: shapes a mix cannot hold and vocab files without tokens are refused") {
    const GgufFile vocab = GgufFile::open(test::model_path(kVocab));
    RandomLlamaSpec spec{tiny_shape(), find_quant_mix("q4_k_m"), 0};
    spec.shape.n_embd = 320;
    spec.shape.n_head = 5;
    CHECK_THROWS_WITH_AS(random_llama_writer(vocab, spec),
                         "random llama: n_embd = 320 is not a multiple of 256, the q4_K block size that "
                         "token_embd.weight has in the q4_k_m mix; choose n_embd as a multiple of 256",
                         ModelError);
    spec.mix = find_quant_mix("q8_0");
    CHECK_NOTHROW(random_llama_writer(vocab, spec));  // Q8_0 needs multiples of 32 only
    spec.mix = find_quant_mix("q4_0");  // output.weight is Q6_K
    CHECK_THROWS_WITH_AS(random_llama_writer(vocab, spec), doctest::Contains("output.weight"), ModelError);
    spec.shape = tiny_shape();
    spec.shape.n_ff = 300;
    CHECK_THROWS_WITH_AS(random_llama_writer(vocab, spec), doctest::Contains("n_ff = 300 is not a multiple of 32"),
                         ModelError);
    spec.shape = tiny_shape();
    spec.shape.n_head_kv = 3;
    CHECK_THROWS_WITH_AS(random_llama_writer(vocab, spec), doctest::Contains("n_head_kv = 3 must divide n_head = 4"),
                         ModelError);
    spec.shape = tiny_shape();
    spec.shape.n_head = 256;  // head size 1
    CHECK_THROWS_WITH_AS(random_llama_writer(vocab, spec), doctest::Contains("must be even"), ModelError);

    GgufWriter no_tokens;
    no_tokens.set("general.architecture", GgufValue::str("llama"));
    const GgufFile empty = GgufFile::from_bytes(no_tokens.to_bytes(), "empty.gguf");
    spec.shape = tiny_shape();
    CHECK_THROWS_WITH_AS(random_llama_writer(empty, spec), doctest::Contains("empty.gguf has no tokenizer.ggml.tokens"),
                         ModelError);
}
