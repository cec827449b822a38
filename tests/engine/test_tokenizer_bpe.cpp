// Byte-level BPE vocabularies (tokenizer.ggml.model = "gpt2"): special tokens, end of
// generation, rendering, and what happens with missing or unknown tokenizer.ggml.pre.
#include <doctest/doctest.h>

#include <algorithm>

#include "engine/tokenizer.h"
#include "formats/gguf_keys.h"
#include "tokenizer_test_util.h"

using namespace kiln;

TEST_CASE("tokenizer bpe: qwen2 special tokens only with parse_special") {
    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-qwen2.gguf");
    CHECK(tok->model() == "gpt2");
    CHECK(tok->pre() == "qwen2");
    CHECK_FALSE(tok->add_bos());
    const int32_t im_end = *tok->find_token("<|im_end|>");
    const int32_t im_start = *tok->find_token("<|im_start|>");
    CHECK(im_end == 151645);
    CHECK(tok->is_eog(im_end));
    CHECK(tok->is_eog(151643));  // <|endoftext|>, eos
    CHECK_FALSE(tok->is_eog(im_start));
    CHECK(tok->eot() == im_end);

    const std::string text = "<|im_start|>user\nHi<|im_end|>\n";
    const auto special = tok->encode(text, true, true);
    CHECK(special.front() == im_start);
    CHECK(std::count(special.begin(), special.end(), im_end) == 1);
    CHECK(tok->decode(special).find("<|im_end|>") == std::string::npos);
    CHECK(tok->decode(special, true) == text);

    const auto plain = tok->encode(text, true, false);
    CHECK(std::find(plain.begin(), plain.end(), im_end) == plain.end());
    CHECK(std::find(plain.begin(), plain.end(), im_start) == plain.end());
    CHECK(tok->decode(plain) == text);
}

TEST_CASE("tokenizer bpe: llama-bpe BOS, eot and round trips of eval.txt") {
    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-llama-bpe.gguf");
    CHECK(tok->add_bos());  // the llama-bpe default; no add_bos key in this file
    CHECK(tok->bos() == 128000);
    const int32_t eot = *tok->find_token("<|eot_id|>");
    CHECK(tok->is_eog(eot));
    CHECK(tok->is_eog(128001));
    CHECK(tok->encode("Hello", true, false).front() == 128000);
    CHECK(tok->encode("<|eot_id|>", false, true) == std::vector<int32_t>{eot});
    CHECK(tok->token_to_piece(eot).empty());
    CHECK(tok->token_to_piece(eot, true) == "<|eot_id|>");

    size_t ok = 0;
    const auto sentences = test::read_lines(test::reference_path("eval.txt"));
    for (const auto& s : sentences) ok += tok->decode(tok->encode(s, true, false)) == s;
    CHECK(ok == sentences.size());
    // Text that is not UTF-8 still round-trips through byte tokens.
    const std::string bad = "ab\xFF\xC3(c\xE2\x82";
    CHECK(tok->decode(tok->encode(bad, false, false)) == bad);
}

TEST_CASE("tokenizer bpe: pieces are bytes, possibly partial UTF-8") {
    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-gpt-2.gguf");
    const auto ids = tok->encode(" Führer \xF0\x9F\xA6\x99", false, false);
    std::string joined;
    for (auto id : ids) joined += tok->token_to_piece(id);
    CHECK(joined == " Führer \xF0\x9F\xA6\x99");
    CHECK(tok->token_to_piece(*tok->find_token("\xC4\xA0the")) == " the");  // Ġthe
}

TEST_CASE("tokenizer bpe: deepseek-llm user-defined tokens match without parse_special") {
    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-deepseek-llm.gguf");
    const int32_t u = *tok->find_token("ü");
    CHECK(tok->token_type(u) == TokenType::UserDefined);
    const auto ids = tok->encode("Führer", false, false);
    CHECK(std::find(ids.begin(), ids.end(), u) != ids.end());
    CHECK(tok->decode(ids) == "Führer");
}

namespace {

// A vocabulary-only GGUF file with a tiny byte-level BPE vocabulary.
GgufFile tiny_bpe(std::optional<std::string> pre, std::string model = "gpt2") {
    namespace k = gguf_keys;
    GgufWriter w;
    w.set(std::string(k::kArchitecture), GgufValue::str("llama"));
    w.set(std::string(k::kTokModel), GgufValue::str(model));
    if (pre) w.set(std::string(k::kTokPre), GgufValue::str(*pre));
    w.set(std::string(k::kTokAddBos), GgufValue::boolean(false));  // no BOS token here
    std::vector<GgufValue> tokens, types;
    for (const char* t : {"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "ab", "<|end|>"}) tokens.push_back(GgufValue::str(t));
    for (int t : {1, 1, 1, 1, 1, 3}) types.push_back(GgufValue::i32(t));
    w.set(std::string(k::kTokTokens), GgufValue::array(GgufValueType::STRING, tokens));
    w.set(std::string(k::kTokTokenType), GgufValue::array(GgufValueType::INT32, types));
    w.set(std::string(k::kTokMerges),
          GgufValue::array(GgufValueType::STRING, {GgufValue::str("a b"), GgufValue::str("\xC4\xA0 ab")}));
    return GgufFile::from_bytes(w.to_bytes(), "tiny.gguf");
}

}  // namespace

TEST_CASE("tokenizer bpe: unknown tokenizer.ggml.pre is an error naming it") {
    try {
        Tokenizer::from_gguf(tiny_bpe("no-such-pre"));
        FAIL("expected TokenizerError");
    } catch (const TokenizerError& e) {
        CHECK(std::string(e.what()).find("no-such-pre") != std::string::npos);
    }
    CHECK_THROWS_AS(Tokenizer::from_gguf(tiny_bpe("gpt-2", "bert")), TokenizerError);
}

TEST_CASE("tokenizer bpe: missing tokenizer.ggml.pre falls back to the default pre-tokenizer") {
    auto tok = Tokenizer::from_gguf(tiny_bpe(std::nullopt));
    CHECK(tok->pre().empty());
    CHECK(tok->encode("ab ab", false, false) == std::vector<int32_t>{2, 4});
    CHECK(tok->encode("ab<|end|>", false, true) == std::vector<int32_t>{2, 5});
    CHECK(tok->is_eog(5));
    CHECK_FALSE(tok->bos().has_value());
}

TEST_CASE("tokenizer bpe: every known pre-tokenizer compiles") {
    // A regex that PCRE2 rejects would only show when such a model is loaded.
    for (const char* pre : {"default", "llama-bpe", "qwen2", "gpt-2", "falcon", "deepseek-llm", "deepseek-coder",
                            "deepseek-v3", "starcoder", "bloom", "tekken", "gpt-4o", "chatglm-bpe"}) {
        const std::string name = pre;
        CAPTURE(name);
        auto tok = Tokenizer::from_gguf(tiny_bpe(std::string(pre)));
        CHECK_NOTHROW(tok->encode("ab ab 123 ¿Qué?\n\n \xFF", false, true));
        CHECK(tok->decode(tok->encode("ab ab", false, false)) == "ab ab");
    }
}

TEST_CASE("tokenizer: metadata without a vocabulary is an error, not a crash") {
    GgufWriter w;
    w.set(std::string(gguf_keys::kArchitecture), GgufValue::str("llama"));
    CHECK_THROWS_AS(Tokenizer::from_gguf(GgufFile::from_bytes(w.to_bytes(), "empty.gguf")), TokenizerError);
    w.set(std::string(gguf_keys::kTokModel), GgufValue::str("llama"));
    CHECK_THROWS_AS(Tokenizer::from_gguf(GgufFile::from_bytes(w.to_bytes(), "empty.gguf")), TokenizerError);
}
