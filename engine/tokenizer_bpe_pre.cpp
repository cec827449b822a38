// tokenizer.ggml.pre -> the pre-tokenizer regexes of byte-level BPE vocabularies.
// Patterns are those of each model family's tokenizer.json as llama.cpp adapted them
// (case-insensitive contractions spelled out as [sS]), so ids match llama.cpp's.
#include <algorithm>

#include "engine/tokenizer_model.h"

namespace kiln {

namespace {

const char* const kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// As Llama 3 but one digit per piece.
const char* const kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// GPT-2's pattern without its final `|\s+`: whitespace it leaves is kept as a piece anyway.
const char* const kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
const char* const kTekken =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kCjk = R"re([一-龥ࠀ-一가-퟿]+)re";

struct PreEntry {
    std::vector<std::string_view> names;
    BpePreConfig config;
};

const std::vector<PreEntry>& pre_table() {
    static const std::vector<PreEntry> table = {
        {{"default"},
         {{R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", R"re([0-9][0-9][0-9])re"}, false, false}},
        {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
         {{kLlama3}, true, true}},
        {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {{kLlama3}, false, false}},
        {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan"}, {{kQwen2}, false, false}},
        {{"gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "exaone4", "jina-es", "jina-de", "jina-v2-es",
          "jina-v2-de", "jina-v1-en", "jina-v2-code", "roberta-bpe"},
         {{kGpt2}, false, false}},
        {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
         {{R"re(\p{N})re", kGpt2}, false, false}},
        {{"falcon"}, {{R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, R"re([0-9][0-9][0-9])re"}, false, false}},
        {{"deepseek-llm"},
         {{R"re([\r\n])re",
           R"re(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)re",
           R"re(\s?[!-/:-~！-／：-～‘-‟　-。]+)re", R"re(\s+$)re", kCjk, R"re(\p{N}+)re"},
          false, false}},
        {{"deepseek-coder"},
         {{R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjk, R"re(\p{N})re"}, false, false}},
        {{"deepseek-v3"},
         {{R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re",
           R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
          false, false}},
        {{"bloom", "poro-chat", "gpt3-finnish"}, {{R"re( ?[^(\s|.,!?…。，、।۔،)]+)re"}, false, false}},
        {{"tekken"}, {{kTekken}, true, true}},
        {{"gpt-4o", "llama4"}, {{kGpt4o}, false, false}},
    };
    return table;
}

}  // namespace

std::vector<std::string_view> bpe_pre_names() {
    std::vector<std::string_view> names;
    for (const auto& e : pre_table()) names.insert(names.end(), e.names.begin(), e.names.end());
    return names;
}

BpePreConfig bpe_pre_config(std::string_view pre) {
    for (const auto& e : pre_table())
        if (std::find(e.names.begin(), e.names.end(), pre) != e.names.end()) return e.config;
    std::string known;
    for (auto n : bpe_pre_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    throw TokenizerError("unknown pre-tokenizer tokenizer.ggml.pre = '" + std::string(pre) +
                         "': kiln cannot tokenize this model's text the way it was trained. Known: " + known);
}

}  // namespace kiln
