#include "models/hparams.h"

#include <cmath>
#include <filesystem>

#include "formats/gguf_keys.h"

namespace kiln {

std::string file_label(const GgufFile& file) {
    const std::string name = std::filesystem::path(file.path()).filename().string();
    return name.empty() ? file.path() : name;
}

namespace {

struct Reader {
    const GgufFile& file;
    const std::string& arch;

    [[noreturn]] void fail(const std::string& what) const { throw ModelError(file_label(file) + ": " + what); }

    std::optional<int64_t> opt_int(std::string_view suffix) const {
        const std::string key = gguf_keys::arch_key(arch, suffix);
        try {
            return file.get_int(key);
        } catch (const GgufError& e) {
            fail(std::string(e.what()));
        }
    }
    int64_t req_int(std::string_view suffix) const {
        auto v = opt_int(suffix);
        if (!v) fail("metadata key " + gguf_keys::arch_key(arch, suffix) + " is missing; the file is incomplete or not a " + arch + " model");
        return *v;
    }
    std::optional<double> opt_float(std::string_view suffix) const {
        try {
            return file.get_float(gguf_keys::arch_key(arch, suffix));
        } catch (const GgufError& e) {
            fail(std::string(e.what()));
        }
    }
    std::optional<std::string> opt_string(std::string_view suffix) const {
        try {
            return file.get_string(gguf_keys::arch_key(arch, suffix));
        } catch (const GgufError& e) {
            fail(std::string(e.what()));
        }
    }
    void check(bool ok, std::string_view suffix, int64_t value, const std::string& rule) const {
        if (!ok) fail("metadata key " + gguf_keys::arch_key(arch, suffix) + " = " + std::to_string(value) + " is invalid: " + rule);
    }
};

}  // namespace

Hparams read_hparams(const GgufFile& file, const std::string& arch, int64_t n_vocab) {
    namespace k = gguf_keys;
    const Reader r{file, arch};
    Hparams h;
    h.arch = arch;
    h.n_vocab = n_vocab;
    h.n_ctx_train = r.req_int(k::kContextLength);
    h.n_embd = r.req_int(k::kEmbeddingLength);
    h.n_layer = r.req_int(k::kBlockCount);
    h.n_ff = r.req_int(k::kFeedForwardLength);
    h.n_head = r.req_int(k::kHeadCount);
    h.n_head_kv = r.opt_int(k::kHeadCountKv).value_or(h.n_head);

    // Bounds keep every later size product far from overflow.
    constexpr int64_t kMaxDim = int64_t(1) << 20;
    r.check(h.n_ctx_train > 0 && h.n_ctx_train <= (int64_t(1) << 24), k::kContextLength, h.n_ctx_train, "must be in [1, 2^24]");
    r.check(h.n_embd > 0 && h.n_embd <= kMaxDim, k::kEmbeddingLength, h.n_embd, "must be in [1, 2^20]");
    r.check(h.n_layer > 0 && h.n_layer <= 4096, k::kBlockCount, h.n_layer, "must be in [1, 4096]");
    r.check(h.n_ff > 0 && h.n_ff <= kMaxDim, k::kFeedForwardLength, h.n_ff, "must be in [1, 2^20]");
    r.check(h.n_head > 0 && h.n_head <= 4096, k::kHeadCount, h.n_head, "must be in [1, 4096]");
    r.check(h.n_head_kv > 0 && h.n_head % h.n_head_kv == 0, k::kHeadCountKv, h.n_head_kv,
            "must divide attention.head_count (" + std::to_string(h.n_head) + ")");

    const auto key_length = r.opt_int(k::kKeyLength);
    if (key_length) {
        h.head_dim = *key_length;
        r.check(h.head_dim > 0 && h.head_dim <= 4096, k::kKeyLength, h.head_dim, "must be in [1, 4096]");
        if (auto vl = r.opt_int(k::kValueLength); vl && *vl != h.head_dim)
            r.check(false, k::kValueLength, *vl, "must equal attention.key_length (" + std::to_string(h.head_dim) + ")");
    } else {
        r.check(h.n_embd % h.n_head == 0, k::kHeadCount, h.n_head,
                "must divide embedding_length (" + std::to_string(h.n_embd) + ") when attention.key_length is absent");
        h.head_dim = h.n_embd / h.n_head;
    }

    if (const auto vs = r.opt_int(k::kVocabSize); vs && *vs != n_vocab)
        r.check(false, k::kVocabSize, *vs, "token_embd.weight has " + std::to_string(n_vocab) + " rows");

    const double eps = r.opt_float(k::kLayerNormRmsEps).value_or(1e-5);
    if (!(eps > 0.0 && eps < 1.0))
        r.fail("metadata key " + gguf_keys::arch_key(arch, k::kLayerNormRmsEps) + " = " + std::to_string(eps) + " must be in (0, 1)");
    h.rms_eps = float(eps);

    RopeParams& rp = h.rope;
    rp.mode = RopeParams::Mode::Normal;
    const int64_t n_rot = r.opt_int(k::kRopeDimensionCount).value_or(h.head_dim);
    r.check(n_rot > 0 && n_rot % 2 == 0 && n_rot <= h.head_dim, k::kRopeDimensionCount, n_rot,
            "must be even and in [2, head_dim = " + std::to_string(h.head_dim) + "]");
    rp.n_rot = int(n_rot);
    const double base = r.opt_float(k::kRopeFreqBase).value_or(10000.0);
    if (!(base > 1.0 && std::isfinite(base)))
        r.fail("metadata key " + gguf_keys::arch_key(arch, k::kRopeFreqBase) + " = " + std::to_string(base) + " must be > 1");
    rp.freq_base = float(base);
    rp.n_ctx_orig = int(r.opt_int(k::kRopeScalingOrigCtx).value_or(h.n_ctx_train));

    h.rope_scaling = r.opt_string(k::kRopeScalingType).value_or("none");
    const double factor = r.opt_float(k::kRopeScalingFactor).value_or(0.0);
    if (h.rope_scaling == "linear" || h.rope_scaling == "yarn") {
        if (!(factor >= 1.0 && std::isfinite(factor)))
            r.fail("metadata key " + gguf_keys::arch_key(arch, k::kRopeScalingFactor) + " = " + std::to_string(factor) +
                   " must be >= 1 with rope scaling \"" + h.rope_scaling + "\"");
        rp.freq_scale = float(1.0 / factor);
        if (h.rope_scaling == "yarn") {
            rp.ext_factor = 1.0f;
            rp.attn_factor = float(r.opt_float(k::kRopeScalingAttnFactor).value_or(1.0));
        }
    } else if (h.rope_scaling != "none") {
        // llama3-style scaling is not a scaling type: it arrives as rope_freqs.weight.
        r.fail("rope scaling type \"" + h.rope_scaling + "\" (" + gguf_keys::arch_key(arch, k::kRopeScalingType) +
               ") is not supported; supported: none, linear, yarn");
    }
    return h;
}

}  // namespace kiln
