// Tokenizer: reads the vocabulary from GGUF metadata, then does what is common to both
// algorithms: special tokens, BOS/EOS, end-of-generation ids, rendering of pieces.
#include "engine/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "engine/tokenizer_model.h"
#include "formats/gguf.h"
#include "formats/gguf_keys.h"

namespace kiln {

namespace keys = gguf_keys;

struct Tokenizer::Fragment {
    int32_t token;          // >= 0: a special token; -1: plain text
    std::string_view text;  // the plain text
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

namespace {

// Texts that end a turn in the chat formats kiln knows; a vocabulary that has one of them
// as a control or user-defined token stops generation there.
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
    "<EOT>", "_<EOT>", "<|return|>", "<|call|>", "<｜end▁of▁sentence｜>", "<|end_of_text|>",
};
// Candidates for the end-of-turn token when tokenizer.ggml.eot_token_id is absent, in order.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
    "<｜end▁of▁sentence｜>",
};

TokenType to_token_type(int64_t v) {
    return v >= 0 && v <= 6 ? TokenType(v) : TokenType::Undefined;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& gguf) {
    const std::string where = gguf.path();
    std::unique_ptr<Tokenizer> tok(new Tokenizer());

    auto model = gguf.get_string(keys::kTokModel);
    if (!model)
        throw TokenizerError(where + ": no tokenizer (" + std::string(keys::kTokModel) +
                             " is missing); kiln needs the vocabulary stored in the GGUF file");
    tok->model_ = *model;
    if (*model != "llama" && *model != "gpt2")
        throw TokenizerError(where + ": unsupported tokenizer " + std::string(keys::kTokModel) + " = '" + *model +
                             "'; kiln supports 'llama' (SentencePiece) and 'gpt2' (byte-level BPE)");
    tok->spm_ = *model == "llama";

    auto tokens = gguf.get_string_array(keys::kTokTokens);
    if (!tokens || tokens->empty())
        throw TokenizerError(where + ": " + std::string(keys::kTokTokens) + " is missing or empty");
    if (tokens->size() > size_t(INT32_MAX))
        throw TokenizerError(where + ": " + std::string(keys::kTokTokens) + " has more tokens than ids can hold");
    const size_t n = tokens->size();

    auto vocab = std::make_unique<TokenizerVocab>();
    vocab->text = std::move(*tokens);
    vocab->score.assign(n, 0.0f);
    vocab->type.assign(n, TokenType::Normal);
    if (auto scores = gguf.get_float_array(keys::kTokScores)) {
        if (scores->size() != n)
            throw TokenizerError(where + ": " + std::string(keys::kTokScores) + " has " + std::to_string(scores->size()) +
                                 " entries for " + std::to_string(n) + " tokens");
        vocab->score = std::move(*scores);
    }
    if (auto types = gguf.get_int_array(keys::kTokTokenType)) {
        if (types->size() != n)
            throw TokenizerError(where + ": " + std::string(keys::kTokTokenType) + " has " +
                                 std::to_string(types->size()) + " entries for " + std::to_string(n) + " tokens");
        for (size_t i = 0; i < n; ++i) vocab->type[i] = to_token_type((*types)[i]);
    }
    vocab->id_of.reserve(n);
    for (size_t i = 0; i < n; ++i) vocab->id_of[vocab->text[i]] = int32_t(i);

    // Special ids: out of range (e.g. 0xFFFFFFFF, "none" in some converters) means absent.
    const auto special_id = [&](std::string_view key, std::optional<int32_t> fallback) -> std::optional<int32_t> {
        auto v = gguf.get_int(key);
        if (!v) return fallback;
        if (*v >= 0 && *v < int64_t(n)) return int32_t(*v);
        if (*v != -1 && *v != int64_t(UINT32_MAX))
            std::fprintf(stderr, "kiln: warning: %s: %.*s = %lld is not a token id (vocabulary of %zu); ignored\n",
                         where.c_str(), int(key.size()), key.data(), (long long)*v, n);
        return std::nullopt;
    };
    // SentencePiece vocabularies put <unk>, <s>, </s> at 0, 1, 2 when the keys are absent.
    tok->bos_ = special_id(keys::kTokBosId, tok->spm_ ? std::optional<int32_t>(1) : std::nullopt);
    tok->eos_ = special_id(keys::kTokEosId, tok->spm_ ? std::optional<int32_t>(2) : std::nullopt);
    tok->unk_ = special_id(keys::kTokUnkId, tok->spm_ ? std::optional<int32_t>(0) : std::nullopt);
    tok->eot_ = special_id(keys::kTokEotId, std::nullopt);
    tok->eom_ = special_id(keys::kTokEomId, std::nullopt);
    tok->pad_ = special_id(keys::kTokPadId, std::nullopt);

    bool default_add_bos = tok->spm_;
    if (tok->spm_) {
        if (!tok->unk_)
            throw TokenizerError(where + ": SentencePiece vocabulary without an unknown token (" +
                                 std::string(keys::kTokUnkId) + ")");
        tok->add_space_prefix_ = gguf.get_bool(keys::kTokAddSpacePrefix).value_or(true);
        tok->vocab_ = std::move(vocab);
        tok->impl_ = make_spm_model(*tok->vocab_, *tok->unk_, where);
    } else {
        auto pre = gguf.get_string(keys::kTokPre);
        if (!pre) {
            std::fprintf(stderr,
                         "kiln: WARNING: %s has no %s key (converted by an old tool).\n"
                         "kiln: WARNING: using the default GPT-2-style pre-tokenizer; tokenization may differ from\n"
                         "kiln: WARNING: the model's own and quality may suffer. Reconvert the model to fix this.\n",
                         where.c_str(), std::string(keys::kTokPre).c_str());
        }
        tok->pre_ = pre.value_or("");
        BpePreConfig config = bpe_pre_config(pre.value_or("default"));
        default_add_bos = config.add_bos;
        tok->add_space_prefix_ = gguf.get_bool(keys::kTokAddSpacePrefix).value_or(false);
        if (tok->add_space_prefix_)
            std::fprintf(stderr, "kiln: warning: %s: %s is ignored for byte-level BPE vocabularies\n", where.c_str(),
                         std::string(keys::kTokAddSpacePrefix).c_str());
        std::vector<std::string> merges = gguf.get_string_array(keys::kTokMerges).value_or(std::vector<std::string>{});
        tok->vocab_ = std::move(vocab);
        tok->impl_ = make_bpe_model(*tok->vocab_, merges, std::move(config), where);
    }
    if (tok->spm_ && tok->pre_.empty()) tok->pre_ = gguf.get_string(keys::kTokPre).value_or("");

    tok->add_bos_ = gguf.get_bool(keys::kTokAddBos).value_or(default_add_bos);
    tok->add_eos_ = gguf.get_bool(keys::kTokAddEos).value_or(false);
    if (tok->add_bos_ && !tok->bos_)
        throw TokenizerError(where + ": " + std::string(keys::kTokAddBos) + " is true but there is no valid " +
                             std::string(keys::kTokBosId));
    if (tok->add_eos_ && !tok->eos_)
        throw TokenizerError(where + ": " + std::string(keys::kTokAddEos) + " is true but there is no valid " +
                             std::string(keys::kTokEosId));
    tok->finish_setup();
    return tok;
}

void Tokenizer::finish_setup() {
    const TokenizerVocab& v = *vocab_;
    const int32_t n = v.size();
    const auto is_marker = [&](int32_t id) {
        return v.type[size_t(id)] == TokenType::Control || v.type[size_t(id)] == TokenType::UserDefined;
    };

    if (!eot_)
        for (auto text : kEotTexts)
            if (int32_t id = v.find(text); id >= 0 && is_marker(id)) {
                eot_ = id;
                break;
            }
    is_eog_.assign(size_t(n), 0);
    for (auto id : {eos_, eot_, eom_})
        if (id) is_eog_[size_t(*id)] = 1;
    for (auto text : kEogTexts)
        if (int32_t id = v.find(text); id >= 0 && is_marker(id)) is_eog_[size_t(id)] = 1;
    for (int32_t id = 0; id < n; ++id)
        if (is_eog_[size_t(id)]) eog_ids_.push_back(id);

    pieces_.resize(size_t(n));
    for (int32_t id = 0; id < n; ++id) {
        const std::string& t = v.text[size_t(id)];
        switch (v.type[size_t(id)]) {
            case TokenType::Control:
            case TokenType::Unknown:
            case TokenType::Unused: break;  // no text unless asked for
            case TokenType::Byte:
                if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(uint8_t(t[3])) &&
                    std::isxdigit(uint8_t(t[4])))
                    pieces_[size_t(id)] = std::string(1, char(std::stoi(t.substr(3, 2), nullptr, 16)));
                else
                    pieces_[size_t(id)] = t;
                break;
            case TokenType::UserDefined:
                // Added tokens are stored as the text they match, not byte-level encoded.
                pieces_[size_t(id)] = spm_ ? impl_->piece_bytes(id) : t;
                break;
            default: pieces_[size_t(id)] = impl_->piece_bytes(id); break;
        }
    }

    for (int32_t id = 0; id < n; ++id) {
        const TokenType ty = v.type[size_t(id)];
        if ((ty == TokenType::Control || ty == TokenType::Unknown || ty == TokenType::UserDefined) &&
            !v.text[size_t(id)].empty())
            special_ids_.push_back(id);
    }
    // Longer texts first, so "<|im_end|>" is not cut by a shorter special inside it.
    std::stable_sort(special_ids_.begin(), special_ids_.end(), [&](int32_t a, int32_t b) {
        return v.text[size_t(a)].size() > v.text[size_t(b)].size();
    });
}

int32_t Tokenizer::n_vocab() const { return vocab_->size(); }

void Tokenizer::check_id(int32_t id) const {
    if (id < 0 || id >= vocab_->size())
        throw TokenizerError("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(vocab_->size()) + ")");
}

TokenType Tokenizer::token_type(int32_t id) const {
    check_id(id);
    return vocab_->type[size_t(id)];
}

const std::string& Tokenizer::token_text(int32_t id) const {
    check_id(id);
    return vocab_->text[size_t(id)];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
    const int32_t id = vocab_->find(text);
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < vocab_->size() && is_eog_[size_t(id)]; }

// Splits out the text of special tokens: user-defined ones always (as Hugging Face matches
// added tokens), control and unknown ones only when parse_special.
std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text, bool parse_special) const {
    std::vector<Fragment> frags;
    if (!text.empty()) frags.push_back({-1, text});
    std::vector<Fragment> next;
    for (int32_t id : special_ids_) {
        if (!parse_special && vocab_->type[size_t(id)] != TokenType::UserDefined) continue;
        const std::string& st = vocab_->text[size_t(id)];
        if (text.find(st) == std::string_view::npos) continue;
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t pos = 0;
            for (size_t hit; (hit = f.text.find(st, pos)) != std::string_view::npos; pos = hit + st.size()) {
                if (hit > pos) next.push_back({-1, f.text.substr(pos, hit - pos)});
                next.push_back({id, {}});
            }
            if (pos < f.text.size()) next.push_back({-1, f.text.substr(pos)});
        }
        frags.swap(next);
    }
    return frags;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    std::vector<int32_t> out;
    if (add_special && add_bos_) out.push_back(*bos_);
    bool first = true, after_special = false;
    for (const Fragment& f : partition(text, parse_special)) {
        if (f.token >= 0) {
            out.push_back(f.token);
            after_special = true;
        } else {
            // SentencePiece's dummy prefix goes before the first word, and before text that
            // follows a special token unless that text already starts with a space: "<s> Hi"
            // is <s> ▁Hi, never <s> ▁ ▁Hi.
            bool prefix = spm_ && add_space_prefix_ && (first || (after_special && f.text.front() != ' '));
            impl_->encode_text(f.text, prefix, out);
            after_special = false;
        }
        first = false;
    }
    if (add_special && add_eos_) out.push_back(*eos_);
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
    check_id(id);
    const TokenType ty = vocab_->type[size_t(id)];
    if (render_special && (ty == TokenType::Control || ty == TokenType::Unknown || ty == TokenType::Unused))
        return vocab_->text[size_t(id)];
    return pieces_[size_t(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
    std::string out;
    bool strip_prefix = spm_ && add_space_prefix_;
    for (int32_t id : ids) {
        std::string piece = token_to_piece(id, render_special);
        if (strip_prefix && !piece.empty()) {
            if (piece.front() == ' ') piece.erase(0, 1);
            strip_prefix = false;
        }
        out += piece;
    }
    return out;
}

}  // namespace kiln
