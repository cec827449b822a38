#pragma once
// Internal to the tokenizer: the vocabulary as read from GGUF and the interface the two
// algorithms (SentencePiece, byte-level BPE) implement. Tokenizer handles BOS/EOS, special
// tokens and rendering; a TokenizerModel only sees plain text between special tokens.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer.h"

namespace kiln {

struct TokenizerVocab {
    std::vector<std::string> text;   // (n_vocab) tokenizer.ggml.tokens
    std::vector<float> score;        // (n_vocab) tokenizer.ggml.scores, 0 when absent
    std::vector<TokenType> type;     // (n_vocab) tokenizer.ggml.token_type, Normal when absent
    std::unordered_map<std::string, int32_t> id_of;  // a repeated text maps to its last id, as in llama.cpp

    int32_t size() const { return int32_t(text.size()); }
    int32_t find(std::string_view t) const {
        auto it = id_of.find(std::string(t));
        return it == id_of.end() ? -1 : it->second;
    }
};

class TokenizerModel {
public:
    virtual ~TokenizerModel() = default;
    // Appends the ids of `text`, which holds no special-token text. `prefix_space` asks for
    // SentencePiece's dummy-prefix space in front (ignored by byte-level BPE).
    virtual void encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const = 0;
    // Bytes a Normal or UserDefined token stands for.
    virtual std::string piece_bytes(int32_t id) const = 0;
};

std::unique_ptr<TokenizerModel> make_spm_model(const TokenizerVocab& vocab, int32_t unk_id,
                                               const std::string& where);

// Byte-level BPE settings that depend on tokenizer.ggml.pre.
struct BpePreConfig {
    std::vector<std::string> regexes;  // applied in order, each splitting the previous pieces
    bool ignore_merges = false;        // a word that is itself a token is emitted whole (Llama 3)
    bool add_bos = false;              // default when tokenizer.ggml.add_bos_token is absent
};
// Throws TokenizerError naming `pre` when kiln does not know it.
BpePreConfig bpe_pre_config(std::string_view pre);
std::vector<std::string_view> bpe_pre_names();  // every tokenizer.ggml.pre kiln knows
std::unique_ptr<TokenizerModel> make_bpe_model(const TokenizerVocab& vocab,
                                               const std::vector<std::string>& merges,
                                               BpePreConfig config, const std::string& where);

}  // namespace kiln
