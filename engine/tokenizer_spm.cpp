// SentencePiece BPE (tokenizer.ggml.model = "llama") through libsentencepiece: the GGUF
// vocabulary (pieces, scores, types) becomes a ModelProto, so merges by score, byte
// fallback and unused-piece resegmentation are SentencePiece's own.
#include <sentencepiece_processor.h>

#include "engine/tokenizer_model.h"
#include "engine/tokenizer_spm_proto.h"

namespace kiln {

namespace {

const std::string kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

class SpmModel final : public TokenizerModel {
public:
    SpmModel(const TokenizerVocab& vocab, int32_t unk_id, const std::string& where) : vocab_(vocab) {
        const auto status = sp_.LoadFromSerializedProto(spm_model_proto(vocab, unk_id));
        if (!status.ok())
            throw TokenizerError(where + ": libsentencepiece rejects the vocabulary built from tokenizer.ggml.*: " +
                                 status.ToString());
    }

    void encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const override {
        std::string input;
        input.reserve(text.size() + 1);
        if (prefix_space) input += ' ';
        input.append(text);
        std::vector<int> ids;
        const auto status = sp_.Encode(input, &ids);
        if (!status.ok()) throw TokenizerError("SentencePiece failed to encode the text: " + status.ToString());
        out.insert(out.end(), ids.begin(), ids.end());
    }

    std::string piece_bytes(int32_t id) const override {
        const std::string& t = vocab_.text[size_t(id)];
        std::string r;
        r.reserve(t.size());
        for (size_t i = 0; i < t.size();) {
            if (t.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
                r += ' ';
                i += kSpaceSymbol.size();
            } else {
                r += t[i++];
            }
        }
        return r;
    }

private:
    const TokenizerVocab& vocab_;
    sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::unique_ptr<TokenizerModel> make_spm_model(const TokenizerVocab& vocab, int32_t unk_id, const std::string& where) {
    return std::make_unique<SpmModel>(vocab, unk_id, where);
}

}  // namespace kiln
