#pragma once
// Every GGUF metadata key kiln reads or writes, named once.
// Architecture-scoped keys are "{arch}.suffix": use arch_key(arch, kContextLength).
#include <string>
#include <string_view>

namespace kiln::gguf_keys {

inline constexpr std::string_view kArchitecture = "general.architecture";
inline constexpr std::string_view kName = "general.name";
inline constexpr std::string_view kAlignment = "general.alignment";
inline constexpr std::string_view kFileType = "general.file_type";
inline constexpr std::string_view kQuantizationVersion = "general.quantization_version";

// Suffixes of "{arch}." keys.
inline constexpr std::string_view kContextLength = "context_length";
inline constexpr std::string_view kEmbeddingLength = "embedding_length";
inline constexpr std::string_view kBlockCount = "block_count";
inline constexpr std::string_view kFeedForwardLength = "feed_forward_length";
inline constexpr std::string_view kHeadCount = "attention.head_count";
inline constexpr std::string_view kHeadCountKv = "attention.head_count_kv";
inline constexpr std::string_view kKeyLength = "attention.key_length";
inline constexpr std::string_view kValueLength = "attention.value_length";
inline constexpr std::string_view kLayerNormRmsEps = "attention.layer_norm_rms_epsilon";
inline constexpr std::string_view kRopeDimensionCount = "rope.dimension_count";
inline constexpr std::string_view kRopeFreqBase = "rope.freq_base";
inline constexpr std::string_view kRopeScalingType = "rope.scaling.type";
inline constexpr std::string_view kRopeScalingFactor = "rope.scaling.factor";
inline constexpr std::string_view kRopeScalingOrigCtx = "rope.scaling.original_context_length";
inline constexpr std::string_view kRopeScalingAttnFactor = "rope.scaling.attn_factor";
inline constexpr std::string_view kRopeScalingYarnLogMul = "rope.scaling.yarn_log_multiplier";
inline constexpr std::string_view kVocabSize = "vocab_size";

inline std::string arch_key(std::string_view arch, std::string_view suffix) {
    std::string k(arch);
    k += '.';
    k += suffix;
    return k;
}

// Tokenizer.
inline constexpr std::string_view kTokModel = "tokenizer.ggml.model";
inline constexpr std::string_view kTokPre = "tokenizer.ggml.pre";
inline constexpr std::string_view kTokTokens = "tokenizer.ggml.tokens";
inline constexpr std::string_view kTokScores = "tokenizer.ggml.scores";
inline constexpr std::string_view kTokTokenType = "tokenizer.ggml.token_type";
inline constexpr std::string_view kTokMerges = "tokenizer.ggml.merges";
inline constexpr std::string_view kTokBosId = "tokenizer.ggml.bos_token_id";
inline constexpr std::string_view kTokEosId = "tokenizer.ggml.eos_token_id";
inline constexpr std::string_view kTokEotId = "tokenizer.ggml.eot_token_id";
inline constexpr std::string_view kTokEomId = "tokenizer.ggml.eom_token_id";
inline constexpr std::string_view kTokUnkId = "tokenizer.ggml.unknown_token_id";
inline constexpr std::string_view kTokSepId = "tokenizer.ggml.seperator_token_id";  // sic, as in the spec
inline constexpr std::string_view kTokPadId = "tokenizer.ggml.padding_token_id";
inline constexpr std::string_view kTokAddBos = "tokenizer.ggml.add_bos_token";
inline constexpr std::string_view kTokAddEos = "tokenizer.ggml.add_eos_token";
inline constexpr std::string_view kTokAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
inline constexpr std::string_view kTokChatTemplate = "tokenizer.chat_template";

}  // namespace kiln::gguf_keys
