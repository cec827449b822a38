#include "engine/tokenizer_spm_proto.h"

#include <cctype>
#include <cstring>
#include <unordered_set>

namespace kiln {

namespace {

// Field numbers and enum values of sentencepiece_model.proto.
enum : uint32_t {
    kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3,
    kPiecePiece = 1, kPieceScore = 2, kPieceType = 3,
    kTrainerModelType = 3, kTrainerVocabSize = 4, kTrainerByteFallback = 35,
    kTrainerUnkId = 40, kTrainerBosId = 41, kTrainerEosId = 42, kTrainerPadId = 43,
    kNormName = 1, kNormAddDummyPrefix = 3, kNormRemoveExtraWhitespaces = 4, kNormEscapeWhitespaces = 5,
};
enum : uint32_t { kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4, kTypeUnused = 5, kTypeByte = 6 };
enum : uint32_t { kModelTypeBpe = 2 };
enum : uint32_t { kWireVarint = 0, kWireLen = 2, kWireFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out += char(uint8_t(v) | 0x80);
        v >>= 7;
    }
    out += char(uint8_t(v));
}
void put_tag(std::string& out, uint32_t field, uint32_t wire) { put_varint(out, (uint64_t(field) << 3) | wire); }
void put_uint(std::string& out, uint32_t field, uint64_t v) {
    put_tag(out, field, kWireVarint);
    put_varint(out, v);
}
void put_int32(std::string& out, uint32_t field, int32_t v) {
    // int32 fields encode negatives as 10-byte two's complement varints.
    put_uint(out, field, uint64_t(int64_t(v)));
}
void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
    put_tag(out, field, kWireLen);
    put_varint(out, bytes.size());
    out.append(bytes);
}
void put_float(std::string& out, uint32_t field, float f) {
    put_tag(out, field, kWireFixed32);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    for (int k = 0; k < 4; ++k) out += char(uint8_t(bits >> (8 * k)));  // little-endian
}

bool is_byte_piece(const std::string& t) {
    return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(uint8_t(t[3])) &&
           std::isxdigit(uint8_t(t[4])) && !std::islower(uint8_t(t[3])) && !std::islower(uint8_t(t[4]));
}

}  // namespace

std::string spm_model_proto(const TokenizerVocab& vocab, int32_t unk_id) {
    const int32_t n = vocab.size();

    std::vector<uint32_t> types(static_cast<size_t>(n));
    bool byte_seen[256] = {};
    for (int32_t i = 0; i < n; ++i) {
        switch (vocab.type[size_t(i)]) {
            case TokenType::Unknown: types[size_t(i)] = kTypeControl; break;  // never produced from text
            case TokenType::Control: types[size_t(i)] = kTypeControl; break;
            case TokenType::UserDefined: types[size_t(i)] = kTypeUserDefined; break;
            case TokenType::Unused: types[size_t(i)] = kTypeUnused; break;
            case TokenType::Byte: {
                const std::string& t = vocab.text[size_t(i)];
                if (is_byte_piece(t)) {
                    types[size_t(i)] = kTypeByte;
                    byte_seen[std::stoi(t.substr(3, 2), nullptr, 16)] = true;
                } else {
                    types[size_t(i)] = kTypeControl;
                }
                break;
            }
            default: types[size_t(i)] = kTypeNormal; break;
        }
    }
    types[size_t(unk_id)] = kTypeUnknown;
    bool byte_fallback = true;
    for (bool b : byte_seen) byte_fallback = byte_fallback && b;
    if (!byte_fallback)  // libsentencepiece accepts byte pieces only with all 256 of them
        for (auto& t : types)
            if (t == kTypeByte) t = kTypeControl;

    // libsentencepiece keeps two maps (normal/user-defined/unused, and the rest); a text
    // must be unique within its map. Byte pieces are looked up only by their <0xNN> text.
    std::unordered_set<std::string_view> normal_seen, reserved_seen;
    std::string pieces;
    for (int32_t i = 0; i < n; ++i) {
        const std::string& t = vocab.text[size_t(i)];
        uint32_t ty = types[size_t(i)];
        const bool normal_map = ty == kTypeNormal || ty == kTypeUserDefined || ty == kTypeUnused;
        auto& seen = normal_map ? normal_seen : reserved_seen;
        std::string text = t;
        if (t.empty() || t.find('\0') != std::string::npos || t.size() >= 8000 || seen.count(t)) {
            // Unreachable stand-in; the real text is kept in the vocabulary for rendering.
            text = "<kiln:unreachable:" + std::to_string(i) + ">";
            ty = kTypeControl;
            if (types[size_t(i)] == kTypeUnknown)
                text = "<kiln:unk:" + std::to_string(i) + ">", ty = kTypeUnknown;
        } else {
            seen.insert(t);
        }
        std::string piece;
        put_bytes(piece, kPiecePiece, text);
        put_float(piece, kPieceScore, vocab.score[size_t(i)]);
        put_uint(piece, kPieceType, ty);
        put_bytes(pieces, kModelPieces, piece);
    }

    std::string trainer;
    put_uint(trainer, kTrainerModelType, kModelTypeBpe);
    put_int32(trainer, kTrainerVocabSize, n);
    put_uint(trainer, kTrainerByteFallback, byte_fallback ? 1 : 0);
    put_int32(trainer, kTrainerUnkId, unk_id);
    put_int32(trainer, kTrainerBosId, -1);
    put_int32(trainer, kTrainerEosId, -1);
    put_int32(trainer, kTrainerPadId, -1);

    std::string normalizer;
    put_bytes(normalizer, kNormName, "identity");
    put_uint(normalizer, kNormAddDummyPrefix, 0);
    put_uint(normalizer, kNormRemoveExtraWhitespaces, 0);
    put_uint(normalizer, kNormEscapeWhitespaces, 1);

    std::string model = std::move(pieces);
    put_bytes(model, kModelTrainerSpec, trainer);
    put_bytes(model, kModelNormalizerSpec, normalizer);
    return model;
}

}  // namespace kiln
