#pragma once
// The one interface every compute backend (CPU, CUDA, Vulkan) implements:
// where weights and activations live, and one call per transformer op.
// A model's forward pass is a short sequence of these calls; the ops see
// only pointers, shapes and types (never engine or model code).
//
// Calls may be asynchronous on device backends: results are visible to the
// host after synchronize(). The CPU backend completes each call before returning.
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "kernels/kv_view.h"
#include "kernels/tensor_view.h"

namespace kiln {

// Shape or type combinations a backend cannot run (checked once per call,
// outside the loops). Reaching this is a bug in the caller or an unsupported model.
class BackendError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Rotary position embedding, following ggml's rope with YaRN (which also
// expresses linear scaling) and optional per-dimension frequency factors
// (llama3-style scaling ships them as the `rope_freqs.weight` tensor).
struct RopeParams {
    enum class Mode {
        Normal,  // rotates pairs (x[2i], x[2i+1]): llama GGUF files (their Q/K are permuted for it)
        Neox,    // rotates (x[i], x[i + n_rot/2])
    };
    Mode mode = Mode::Normal;
    int n_rot = 0;              // rotated dimensions at the start of each head (rope.dimension_count)
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;    // 1 / rope.scaling.factor for linear and YaRN scaling
    // YaRN: ext_factor 0 disables the ramp; attn_factor scales cos/sin.
    float ext_factor = 0.0f;
    float attn_factor = 1.0f;
    float beta_fast = 32.0f;
    float beta_slow = 1.0f;
    int n_ctx_orig = 0;         // rope.scaling.original_context_length (or the training context)
    const float* freq_factors = nullptr;  // n_rot/2 divisors of theta, host memory; nullptr: none
};

struct AttentionParams {
    int n_head = 0;
    int n_head_kv = 0;  // n_head % n_head_kv == 0; query head h reads KV head h / (n_head / n_head_kv)
    int head_dim = 0;
    float scale = 1.0f; // applied to q·k before the softmax, usually 1/sqrt(head_dim)
};

// Backend-owned activation memory; frees itself.
class ActBuffer {
public:
    ActBuffer() = default;
    ActBuffer(Act act, std::shared_ptr<void> storage) : act_(act), storage_(std::move(storage)) {}
    const Act& act() const { return act_; }
    explicit operator bool() const { return act_.data != nullptr; }

private:
    Act act_;
    std::shared_ptr<void> storage_;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    // ---- memory -----------------------------------------------------------
    // Makes a host weight usable by this backend (the CPU backend keeps the view).
    virtual Weight upload_weight(const TensorView& host) = 0;
    // An (n_rows, n_cols) F32 activation matrix; rows padded for alignment.
    virtual ActBuffer alloc_act(int64_t n_rows, int64_t n_cols) = 0;
    // Host <-> backend copies of whole activation matrices (n_rows * n_cols floats, dense).
    virtual void write_act(Act dst, const float* src) = 0;
    virtual void read_act(const Act& src, float* dst) = 0;
    // Waits for every call issued so far.
    virtual void synchronize() = 0;

    // ---- ops (out may not alias an input unless stated) --------------------
    // out[t, :] = dequantized row ids[t] of `table` (the token embedding lookup).
    virtual void get_rows(const Weight& table, std::span<const int32_t> ids, Act out) = 0;
    // y[t, o] = sum_i x[t, i] * W[o, i]  (y = x · W^T): one token (x.n_rows == 1,
    // the decode step) or a batch of tokens (prompt processing).
    virtual void matmul(const Weight& w, const Act& x, Act y) = 0;
    // Several products of one x (Q, K and V; gate and up): ys[i] = x · ws[i]^T. A
    // device backend may run them as one launch; the default calls matmul for each.
    virtual void matmul_n(const Act& x, std::span<const Weight* const> ws, std::span<const Act> ys) {
        if (ws.size() != ys.size()) throw BackendError("matmul_n: " + std::to_string(ws.size()) + " weights for " +
                                                       std::to_string(ys.size()) + " outputs");
        for (size_t i = 0; i < ws.size(); ++i) matmul(*ws[i], x, ys[i]);
    }
    // out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight  (out may alias x).
    virtual void rms_norm(const Act& x, const Weight& weight, float eps, Act out) = 0;
    // The residual step and the next norm: x += b, then out = rms_norm(x) (out must
    // not alias x or b). The default is add then rms_norm; one pass on devices.
    virtual void add_rms_norm(Act x, const Act& b, const Weight& weight, float eps, Act out) {
        add(x, b, x);
        rms_norm(x, weight, eps, out);
    }
    // The end of one residual block and the start of the next: proj = in · w^T,
    // x += proj, normed = rms_norm(x) (weight `norm`), then ys[i] = normed · ws[i]^T.
    // The default is matmul, add_rms_norm and matmul_n; a device backend may fold
    // the norm into the two products for a decode step, and then proj and normed
    // hold anything afterwards.
    virtual void matmul_add_rms_norm_matmul_n(const Weight& w, const Act& in, Act proj, Act x, const Weight& norm,
                                              float eps, Act normed, std::span<const Weight* const> ws,
                                              std::span<const Act> ys) {
        matmul(w, in, proj);
        add_rms_norm(x, proj, norm, eps, normed);
        matmul_n(normed, ws, ys);
    }
    // In place on x = (n_tok, n_head * head_dim); token t is at position pos[t].
    virtual void rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) = 0;
    // Stores the batch's k and v rows (n_tok, n_kv_dim) of `layer` into cells[t].
    virtual void kv_store(const KvView& kv, int layer, const Act& k, const Act& v,
                          std::span<const int32_t> cells) = 0;
    // The steps between the projections and attention: rope on q (n_head heads) and
    // k (n_kv_dim / head_dim heads), then k and v into the cache. The default is
    // rope, rope, kv_store; one launch on devices.
    virtual void rope_kv_store(Act q, Act k, const Act& v, int n_head, int head_dim, std::span<const int32_t> pos,
                               const RopeParams& p, const KvView& kv, int layer, std::span<const int32_t> cells) {
        rope(q, n_head, head_dim, pos, p);
        rope(k, int(k.n_cols / head_dim), head_dim, pos, p);
        kv_store(kv, layer, k, v, cells);
    }
    // Causal attention of q (n_tok, n_head * head_dim) over the visible cells of
    // `layer` (kv_cell_visible with the token's pos and seq), into out (same shape as q).
    virtual void attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                           std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) = 0;
    // rope_kv_store, then attention of the rotated q into out: the attention block's
    // two ops in one call, so that a device backend can do both in one kernel for a
    // decode step. q and k hold anything afterwards.
    virtual void rope_kv_attention(Act q, Act k, const Act& v, std::span<const int32_t> pos,
                                   std::span<const int32_t> seq, const RopeParams& rope, const AttentionParams& p,
                                   const KvView& kv, int layer, std::span<const int32_t> cells, Act out) {
        rope_kv_store(q, k, v, p.n_head, p.head_dim, pos, rope, kv, layer, cells);
        attention(q, kv, layer, p, pos, seq, out);
    }
    // out = silu(gate) * up, elementwise (out may alias gate).
    virtual void swiglu(const Act& gate, const Act& up, Act out) = 0;
    // out = a + b, elementwise (out may alias a or b).
    virtual void add(const Act& a, const Act& b, Act out) = 0;
    // Row-wise softmax in place.
    virtual void softmax(Act x) = 0;
    // out[i, :] = src[rows[i], :]: gathers the rows whose logits are wanted.
    virtual void copy_rows(const Act& src, std::span<const int32_t> rows, Act out) = 0;
};

}  // namespace kiln
