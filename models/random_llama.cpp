#include "models/random_llama.h"

#include <cmath>
#include <memory>
#include <string>

#include "formats/gguf_keys.h"
#include "formats/quant_traits.h"
#include "formats/random_blocks.h"
#include "models/hparams.h"

namespace kiln {

namespace {

// Weights of a matrix with rows of n_in have standard deviation 0.5/sqrt(n_in):
// a unit-rms input gives outputs of rms ~0.5, so the residual stream grows
// slowly through 32 layers and every activation and logit stays finite.
float weight_sigma(int64_t n_in) { return 0.5f / std::sqrt(float(n_in)); }

// Norm weights are 1 +- 0.02.
constexpr float kNormNoise = 0.02f;

// splitmix64's finalizer: a tensor's seed from the file's seed and its index.
uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct TensorPlan {
    std::string name;
    LlamaTensor role;
    int layer;
    std::vector<int64_t> ne;  // GGUF order: ne[0] is the row length
    const char* row_dim;      // the shape parameter ne[0] comes from, for errors
};

int64_t rows_of(const TensorPlan& t) { return t.ne.size() > 1 ? t.ne[1] : 1; }

std::vector<TensorPlan> plan_tensors(const RandomLlamaShape& s, int64_t n_vocab) {
    const int64_t head_dim = s.n_embd / s.n_head, n_q = s.n_head * head_dim, n_kv = s.n_head_kv * head_dim;
    std::vector<TensorPlan> p;
    p.push_back({"token_embd.weight", LlamaTensor::TokenEmbd, 0, {s.n_embd, n_vocab}, "n_embd"});
    for (int il = 0; il < int(s.n_layer); ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        p.push_back({b + "attn_norm.weight", LlamaTensor::AttnNorm, il, {s.n_embd}, "n_embd"});
        p.push_back({b + "attn_q.weight", LlamaTensor::AttnQ, il, {s.n_embd, n_q}, "n_embd"});
        p.push_back({b + "attn_k.weight", LlamaTensor::AttnK, il, {s.n_embd, n_kv}, "n_embd"});
        p.push_back({b + "attn_v.weight", LlamaTensor::AttnV, il, {s.n_embd, n_kv}, "n_embd"});
        p.push_back({b + "attn_output.weight", LlamaTensor::AttnOutput, il, {n_q, s.n_embd}, "n_embd"});
        p.push_back({b + "ffn_norm.weight", LlamaTensor::FfnNorm, il, {s.n_embd}, "n_embd"});
        p.push_back({b + "ffn_gate.weight", LlamaTensor::FfnGate, il, {s.n_embd, s.n_ff}, "n_embd"});
        p.push_back({b + "ffn_up.weight", LlamaTensor::FfnUp, il, {s.n_embd, s.n_ff}, "n_embd"});
        p.push_back({b + "ffn_down.weight", LlamaTensor::FfnDown, il, {s.n_ff, s.n_embd}, "n_ff"});
    }
    p.push_back({"output_norm.weight", LlamaTensor::OutputNorm, 0, {s.n_embd}, "n_embd"});
    p.push_back({"output.weight", LlamaTensor::Output, 0, {s.n_embd, n_vocab}, "n_embd"});
    return p;
}

void check_shape(const RandomLlamaShape& s) {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw ModelError("random llama: " + what);
    };
    need(s.n_layer >= 1 && s.n_layer <= 4096, "n_layer = " + std::to_string(s.n_layer) + " must be in [1, 4096]");
    need(s.n_embd >= 1 && s.n_embd <= (1 << 20), "n_embd = " + std::to_string(s.n_embd) + " must be in [1, 2^20]");
    need(s.n_ff >= 1 && s.n_ff <= (1 << 20), "n_ff = " + std::to_string(s.n_ff) + " must be in [1, 2^20]");
    need(s.n_ctx >= 1 && s.n_ctx <= (1 << 24), "n_ctx = " + std::to_string(s.n_ctx) + " must be in [1, 2^24]");
    need(s.n_head >= 1 && s.n_embd % s.n_head == 0,
         "n_head = " + std::to_string(s.n_head) + " must divide n_embd = " + std::to_string(s.n_embd));
    need((s.n_embd / s.n_head) % 2 == 0,
         "head size n_embd / n_head = " + std::to_string(s.n_embd / s.n_head) + " must be even (rope rotates pairs)");
    need(s.n_head_kv >= 1 && s.n_head % s.n_head_kv == 0,
         "n_head_kv = " + std::to_string(s.n_head_kv) + " must divide n_head = " + std::to_string(s.n_head));
}

}  // namespace

GgufWriter random_llama_writer(const GgufFile& vocab, const RandomLlamaSpec& spec, RandomLlamaProgress progress) {
    namespace k = gguf_keys;
    if (!spec.mix) throw ModelError("random llama: no quant mix given");
    const QuantMix& mix = *spec.mix;
    RandomLlamaShape s = spec.shape;
    if (s.n_head_kv == 0) s.n_head_kv = s.n_head;
    check_shape(s);

    const GgufValue* tokens = vocab.find(k::kTokTokens);
    if (!tokens || tokens->type != GgufValueType::ARRAY || tokens->as_array(k::kTokTokens).items.empty())
        throw ModelError(file_label(vocab) + " has no " + std::string(k::kTokTokens) +
                         " array to copy: pass a GGUF model file that carries its vocabulary");
    const int64_t n_vocab = int64_t(tokens->as_array(k::kTokTokens).items.size());

    const std::vector<TensorPlan> plan = plan_tensors(s, n_vocab);
    std::vector<GgmlType> types;
    std::vector<uint64_t> row_bytes;
    uint64_t total = 0;  // bytes of tensor data
    for (const TensorPlan& t : plan) {
        const GgmlType type = quant_mix_type(mix, t.role, t.layer, int(s.n_layer));
        const QuantTraits& q = quant_traits(type);
        if (t.ne[0] % q.block_size != 0)
            throw ModelError("random llama: " + std::string(t.row_dim) + " = " + std::to_string(t.ne[0]) +
                             " is not a multiple of " + std::to_string(q.block_size) + ", the " + q.name +
                             " block size that " + t.name + " has in the " + mix.name + " mix; choose " + t.row_dim +
                             " as a multiple of " + std::to_string(q.block_size));
        types.push_back(type);
        row_bytes.push_back(*tensor_bytes(type, uint64_t(t.ne[0])));
        total += row_bytes.back() * uint64_t(rows_of(t));
    }

    GgufWriter w;
    const std::string arch = "llama";
    auto key = [&](std::string_view suffix) { return k::arch_key(arch, suffix); };
    w.set(std::string(k::kArchitecture), GgufValue::str(arch));
    w.set(std::string(k::kName), GgufValue::str("random weights (kiln random-model, " + std::string(mix.name) +
                                               ", seed " + std::to_string(spec.seed) + ")"));
    w.set(std::string(k::kFileType), GgufValue::u32(mix.file_type));
    w.set(std::string(k::kQuantizationVersion), GgufValue::u32(2));  // ggml's GGML_QNT_VERSION
    w.set(key(k::kContextLength), GgufValue::u32(uint32_t(s.n_ctx)));
    w.set(key(k::kEmbeddingLength), GgufValue::u32(uint32_t(s.n_embd)));
    w.set(key(k::kBlockCount), GgufValue::u32(uint32_t(s.n_layer)));
    w.set(key(k::kFeedForwardLength), GgufValue::u32(uint32_t(s.n_ff)));
    w.set(key(k::kRopeDimensionCount), GgufValue::u32(uint32_t(s.n_embd / s.n_head)));
    w.set(key(k::kHeadCount), GgufValue::u32(uint32_t(s.n_head)));
    w.set(key(k::kHeadCountKv), GgufValue::u32(uint32_t(s.n_head_kv)));
    w.set(key(k::kLayerNormRmsEps), GgufValue::f32(1e-5f));
    w.set(key(k::kRopeFreqBase), GgufValue::f32(10000.0f));
    w.set(key(k::kVocabSize), GgufValue::u32(uint32_t(n_vocab)));
    for (const GgufKeyValue& kv : vocab.metadata())
        if (kv.key.rfind("tokenizer.", 0) == 0) w.set(kv.key, kv.value);

    auto shared_progress = std::make_shared<const RandomLlamaProgress>(std::move(progress));
    uint64_t start = 0;  // of this tensor's data among all tensors' data
    for (size_t i = 0; i < plan.size(); ++i) {
        const TensorPlan& t = plan[i];
        const GgmlType type = types[i];
        const int64_t row = t.ne[0];
        const uint64_t bytes_per_row = row_bytes[i];
        const uint64_t seed = mix64(spec.seed ^ mix64(i + 1));
        const bool is_norm = t.ne.size() == 1;
        const float sigma = weight_sigma(row);
        // Restarts its stream at row 0, so each write of the writer gives the same bytes.
        Xoshiro256 rng(seed);
        w.add_tensor(t.name, type, t.ne,
                     [=](int64_t first_row, int64_t n_rows, uint8_t* dst) mutable {
                         if (first_row == 0) rng = Xoshiro256(seed);
                         if (is_norm) {
                             float* x = reinterpret_cast<float*>(dst);
                             for (int64_t j = 0; j < n_rows * row; ++j)
                                 x[j] = 1.0f + kNormNoise * (2.0f * rng.uniform() - 1.0f);
                         } else {
                             fill_random(type, sigma, rng, dst, n_rows * row);
                         }
                         if (*shared_progress) (*shared_progress)(start + uint64_t(first_row + n_rows) * bytes_per_row, total);
                     });
        start += uint64_t(rows_of(t)) * bytes_per_row;
    }
    return w;
}

}  // namespace kiln
