#pragma once
// A SentencePiece ModelProto, serialized by hand (protobuf wire format), built from a GGUF
// vocabulary so libsentencepiece can load it with LoadFromSerializedProto.
#include <cstdint>
#include <string>

#include "engine/tokenizer_model.h"

namespace kiln {

// BPE model with byte fallback when all 256 <0xNN> pieces exist; identity normalizer with
// no dummy prefix (the tokenizer adds the prefix space itself), spaces escaped to U+2581.
// `unk_id` becomes the one UNKNOWN piece; pieces libsentencepiece would reject (empty, with
// NUL, repeated, a second UNKNOWN) become unreachable CONTROL pieces so ids stay aligned.
std::string spm_model_proto(const TokenizerVocab& vocab, int32_t unk_id);

}  // namespace kiln
