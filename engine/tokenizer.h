#pragma once
// Text <-> token ids for the two vocabulary kinds GGUF files carry:
//   tokenizer.ggml.model = "llama": SentencePiece BPE (scores, byte fallback <0xNN>, ▁ for space)
//   tokenizer.ggml.model = "gpt2":  byte-level BPE (merges, GPT-2 byte->unicode map, a
//                                   pre-tokenizer regex set chosen by tokenizer.ggml.pre)
// Ids and behaviour follow llama.cpp's tokenizer tests (../shared/models/tokenizer-tests).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

class GgufFile;

// Unsupported or inconsistent tokenizer metadata; the message names the key and the file.
class TokenizerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Values of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,      // <s>, </s>, <|eot_id|>: produced from text only when parse_special
    UserDefined = 4,  // always matched as a whole in text, like Hugging Face's added tokens
    Unused = 5,
    Byte = 6,         // <0xNN>: SentencePiece byte fallback
};

class TokenizerModel;  // SPM or BPE algorithm behind the common handling of specials
struct TokenizerVocab;

class Tokenizer {
public:
    // Throws TokenizerError for a missing vocabulary, an unsupported tokenizer.ggml.model or
    // an unknown tokenizer.ggml.pre; GgufError for keys of the wrong type.
    static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& gguf);
    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // add_special: BOS/EOS as tokenizer.ggml.add_bos_token / add_eos_token say.
    // parse_special: text of control tokens (e.g. "<|eot_id|>") becomes that token; when
    // false such text is tokenized as ordinary characters. User-defined tokens always match.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes this token contributes to the output (may be partial UTF-8 for byte tokens).
    // Control, unknown and unused tokens give "" unless render_special, then their text.
    // Throws TokenizerError for an id outside [0, n_vocab).
    std::string token_to_piece(int32_t id, bool render_special = false) const;
    // Concatenated pieces; for SentencePiece the space that add_space_prefix put in front of
    // the first word is removed, so decode(encode(x, true, false)) == x.
    std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

    int32_t n_vocab() const;
    const std::string& model() const { return model_; }  // "llama" or "gpt2"
    const std::string& pre() const { return pre_; }      // tokenizer.ggml.pre, "" when absent

    std::optional<int32_t> bos() const { return bos_; }
    std::optional<int32_t> eos() const { return eos_; }
    std::optional<int32_t> eot() const { return eot_; }  // from the key, else found by text
    std::optional<int32_t> eom() const { return eom_; }
    std::optional<int32_t> unk() const { return unk_; }
    std::optional<int32_t> pad() const { return pad_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    bool add_space_prefix() const { return add_space_prefix_; }

    // End of generation: eos, eot, eom and every control/user-defined token whose text is a
    // known end-of-turn marker (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, ...).
    bool is_eog(int32_t id) const;
    const std::vector<int32_t>& eog_ids() const { return eog_ids_; }

    TokenType token_type(int32_t id) const;
    const std::string& token_text(int32_t id) const;  // as stored in the vocabulary
    std::optional<int32_t> find_token(std::string_view text) const;

private:
    Tokenizer();
    struct Fragment;
    void check_id(int32_t id) const;
    std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
    void finish_setup();

    std::string model_, pre_;
    std::unique_ptr<TokenizerVocab> vocab_;
    std::unique_ptr<TokenizerModel> impl_;
    bool spm_ = false;
    std::optional<int32_t> bos_, eos_, eot_, eom_, unk_, pad_;
    bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
    std::vector<int32_t> eog_ids_;
    std::vector<uint8_t> is_eog_;        // (n_vocab)
    std::vector<std::string> pieces_;    // (n_vocab) token_to_piece without render_special
    std::vector<int32_t> special_ids_;   // control/unknown/user-defined, longest text first
};

}  // namespace kiln
