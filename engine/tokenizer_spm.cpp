// SentencePiece BPE (tokenizer.ggml.model = "llama") through libsentencepiece: the GGUF
// vocabulary (pieces, scores, types) becomes a ModelProto, so merges by score, byte
// fallback and unused-piece resegmentation are SentencePiece's own.
#include <sentencepiece_processor.h>

#include "engine/tokenizer_model.h"
#include "engine/tokenizer_spm_proto.h"
#include "engine/unicode.h"

namespace kiln {

namespace {

const std::string kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

class SpmModel final : public TokenizerModel {
public:
    SpmModel(const TokenizerVocab& vocab, int32_t unk_id, const std::string& where) : vocab_(vocab), unk_id_(unk_id) {
        static const char hex[] = "0123456789ABCDEF";
        for (int b = 0; b < 256; ++b) {
            const int32_t id = vocab.find(std::string{'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'});
            byte_token_[b] = id >= 0 && vocab.type[size_t(id)] == TokenType::Byte ? id : -1;
        }
        const auto status = sp_.LoadFromSerializedProto(spm_model_proto(vocab, unk_id));
        if (!status.ok())
            throw TokenizerError(where + ": libsentencepiece rejects the vocabulary built from tokenizer.ggml.*: " +
                                 status.ToString());
    }

    void encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const override {
        // libsentencepiece turns malformed UTF-8 into U+FFFD; llama.cpp (and a lossless round
        // trip) wants such bytes as byte tokens, so only well-formed runs go to SentencePiece.
        size_t run = 0;
        for (size_t i = 0; i < text.size();) {
            if (const size_t n = unicode::utf8_seq_len(text, i); n > 0) {
                i += n;
                continue;
            }
            encode_run(text.substr(run, i - run), prefix_space && run == 0, out);
            const int32_t byte_id = byte_token_[uint8_t(text[i])];
            out.push_back(byte_id >= 0 ? byte_id : unk_id_);
            run = ++i;
        }
        encode_run(text.substr(run), prefix_space && run == 0, out);
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
    void encode_run(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const {
        if (text.empty() && !prefix_space) return;
        std::string input;
        input.reserve(text.size() + 1);
        if (prefix_space) input += ' ';
        input.append(text);
        std::vector<int> ids;
        const auto status = sp_.Encode(input, &ids);
        if (!status.ok()) throw TokenizerError("SentencePiece failed to encode the text: " + status.ToString());
        out.insert(out.end(), ids.begin(), ids.end());
    }

    const TokenizerVocab& vocab_;
    int32_t unk_id_;
    int32_t byte_token_[256];
    sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::unique_ptr<TokenizerModel> make_spm_model(const TokenizerVocab& vocab, int32_t unk_id, const std::string& where) {
    return std::make_unique<SpmModel>(vocab, unk_id, where);
}

}  // namespace kiln
