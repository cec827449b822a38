// SentencePiece vocabularies (tokenizer.ggml.model = "llama") against libsentencepiece
// loaded directly on the original .model files, against llama.cpp's prompt ids, and the
// behaviour around special tokens.
#include <doctest/doctest.h>

#include <algorithm>

#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>

#include "tokenizer_test_util.h"

using namespace kiln;

namespace {

// SentencePiece's remove_extra_whitespaces: no leading/trailing spaces, runs become one.
std::string collapse_spaces(const std::string& s) {
    std::string r;
    for (char c : s)
        if (c != ' ' || (!r.empty() && r.back() != ' ')) r += c;
    while (!r.empty() && r.back() == ' ') r.pop_back();
    return r;
}

// Every sentence of eval.txt: ours (without BOS) == libsentencepiece on `spm_model`.
// tok512.model collapses runs of spaces (remove_extra_whitespaces, the trainer's default),
// which its GGUF conversion does not record; like llama.cpp we keep every space, so for
// that model the comparison is on text with the runs already collapsed.
void compare_with_sentencepiece(const std::string& gguf_file, const std::string& spm_model,
                                bool model_collapses_spaces = false) {
    sentencepiece::SentencePieceProcessor sp;
    REQUIRE(sp.Load(test::model_path(spm_model)).ok());
    auto tok = test::load_tokenizer(gguf_file);
    const auto sentences = test::read_lines(test::reference_path("eval.txt"));
    REQUIRE(sentences.size() > 1000);
    size_t same = 0, round_trip = 0;
    for (const auto& s : sentences) {
        std::vector<int> want;
        REQUIRE(sp.Encode(s, &want).ok());
        const auto got = tok->encode(model_collapses_spaces ? collapse_spaces(s) : s, false, false);
        if (std::vector<int32_t>(want.begin(), want.end()) == got)
            ++same;
        else
            CHECK_MESSAGE(false, "differs from libsentencepiece: " << s);
        const auto with_bos = tok->encode(s, true, false);
        if (tok->decode(with_bos) == s)
            ++round_trip;
        else
            CHECK_MESSAGE(false, "round trip changes: " << s << " -> " << tok->decode(with_bos));
    }
    MESSAGE(gguf_file << " vs " << spm_model << ": " << same << "/" << sentences.size() << " equal, " << round_trip
                      << " round trips");
    CHECK(same == sentences.size());
    CHECK(round_trip == sentences.size());
}

void check_prompt_ids(const std::string& gguf_file, const std::string& jsonl) {
    auto tok = test::load_tokenizer(gguf_file);
    size_t n = 0;
    for (const auto& line : test::read_lines(test::reference_path(jsonl))) {
        if (line.empty()) continue;
        const auto rec = nlohmann::json::parse(line);
        const std::string prompt = rec.at("prompt");
        const std::vector<int32_t> want = rec.at("prompt_ids");
        CAPTURE(prompt);
        CHECK(tok->encode(prompt, true, false) == want);
        CHECK(tok->decode(want) == prompt);
        ++n;
    }
    CHECK(n == 8);
}

}  // namespace

TEST_CASE("tokenizer spm: kiln-test vocabulary equals libsentencepiece with tokenizer.model on eval.txt") {
    compare_with_sentencepiece("kiln-test-15m-f16.gguf", "tokenizer.model");
}

TEST_CASE("tokenizer spm: stories260K vocabulary equals libsentencepiece with tok512.model on eval.txt") {
    compare_with_sentencepiece("stories260K.gguf", "tok512.model", /*model_collapses_spaces=*/true);
}

TEST_CASE("tokenizer spm: prompt ids equal llama.cpp's (with BOS)") {
    check_prompt_ids("kiln-test-15m-f16.gguf", "kiln-test-15m-f16.greedy.jsonl");
    check_prompt_ids("stories260K.gguf", "stories260K.greedy.jsonl");
}

TEST_CASE("tokenizer spm: metadata of the Llama 2 vocabulary") {
    auto tok = test::load_tokenizer("kiln-test-15m-f16.gguf");
    CHECK(tok->model() == "llama");
    CHECK(tok->n_vocab() == 32000);
    CHECK(tok->bos() == 1);
    CHECK(tok->eos() == 2);
    CHECK(tok->unk() == 0);
    CHECK(tok->add_bos());
    CHECK_FALSE(tok->add_eos());
    CHECK(tok->add_space_prefix());
    CHECK(tok->is_eog(2));
    CHECK_FALSE(tok->is_eog(1));
    CHECK(tok->eog_ids() == std::vector<int32_t>{2});
    CHECK(tok->token_type(1) == TokenType::Control);
    CHECK(tok->token_type(3) == TokenType::Byte);
    CHECK(tok->token_type(15043) == TokenType::Normal);
    CHECK(tok->token_text(15043) == "\xE2\x96\x81Hello");
    CHECK(tok->find_token("<0x0A>") == 13);
    CHECK_THROWS_AS(tok->token_to_piece(32000), TokenizerError);
    CHECK_THROWS_AS(tok->token_to_piece(-1), TokenizerError);
}

TEST_CASE("tokenizer spm: the documented example and pieces") {
    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-llama-spm.gguf");
    // MANIFEST.md: libsentencepiece 0.1.97 on tokenizer.model, no BOS.
    CHECK(tok->encode("Hello world! Once upon a time", false, false) ==
          std::vector<int32_t>{15043, 3186, 29991, 9038, 2501, 263, 931});
    CHECK(tok->encode("Hello", true, false) == std::vector<int32_t>{1, 15043});
    CHECK(tok->encode("", true, false) == std::vector<int32_t>{1});
    CHECK(tok->encode("", false, false).empty());
    CHECK(tok->token_to_piece(15043) == " Hello");
    CHECK(tok->token_to_piece(1).empty());
    CHECK(tok->token_to_piece(1, true) == "<s>");
    CHECK(tok->token_to_piece(13) == "\n");            // <0x0A>
    CHECK(tok->token_to_piece(3 + 0xE2) == "\xE2");    // a byte token: partial UTF-8 on its own
    // Byte fallback for a character the vocabulary lacks, and back.
    const std::string rare = "\xF0\x9F\xA6\x99";  // U+1F999
    const auto ids = tok->encode(rare, false, false);
    CHECK(ids == std::vector<int32_t>{29871, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99});
    CHECK(tok->decode(ids) == rare);
}

TEST_CASE("tokenizer spm: control-token text is split out only with parse_special") {
    auto tok = test::load_tokenizer("kiln-test-15m-f16.gguf");
    const auto plain = tok->encode("<s>Hello</s>", false, false);
    CHECK(std::find(plain.begin(), plain.end(), 1) == plain.end());
    CHECK(std::find(plain.begin(), plain.end(), 2) == plain.end());
    CHECK(tok->decode(plain) == "<s>Hello</s>");

    // Text right after a special token gets the word-initial ▁ once: ▁Hello, not ▁ ▁Hello.
    CHECK(tok->encode("<s>Hello</s>", false, true) == std::vector<int32_t>{1, 15043, 2});
    CHECK(tok->encode("<s> Hello", false, true) == std::vector<int32_t>{1, 15043});
    CHECK(tok->encode("Hi<s>Hello", false, true) == std::vector<int32_t>{tok->encode("Hi", false, false)[0], 1, 15043});
    CHECK(tok->encode("<s>", true, true) == std::vector<int32_t>{1, 1});
}

TEST_CASE("tokenizer spm: phi-3 end-of-generation tokens and special text") {
    auto tok = test::load_tokenizer("tokenizer-tests/ggml-vocab-phi-3.gguf");
    CHECK(tok->eos() == 32000);
    const int32_t end = *tok->find_token("<|end|>");
    CHECK(end == 32007);
    CHECK(tok->is_eog(32000));  // <|endoftext|>
    CHECK(tok->is_eog(end));
    CHECK(tok->eot() == end);
    CHECK_FALSE(tok->is_eog(*tok->find_token("<|user|>")));
    CHECK(tok->encode("<|user|>", false, true) == std::vector<int32_t>{32010});
    const auto plain = tok->encode("<|user|>", false, false);
    CHECK(plain.size() > 1);
    CHECK(tok->decode(plain) == "<|user|>");
    // </s> is a user-defined token in this vocabulary: matched even without parse_special.
    CHECK(tok->encode("a</s>", false, false).back() == 2);
}

TEST_CASE("tokenizer spm: malformed UTF-8 becomes byte tokens and round-trips") {
    auto tok = test::load_tokenizer("kiln-test-15m-f16.gguf");
    const std::string bad = "caf\xC3 ok\xFF\xFE end\xE2\x82";
    const auto ids = tok->encode(bad, true, false);
    CHECK(std::find(ids.begin(), ids.end(), 3 + 0xFF) != ids.end());
    CHECK(tok->decode(ids) == bad);
    CHECK(tok->encode("\xFF", false, false) == std::vector<int32_t>{29871, 3 + 0xFF});
}
