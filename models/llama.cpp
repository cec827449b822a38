#include "models/llama.h"

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "models/weights.h"

namespace kiln {
namespace {

struct LlamaLayer {
    Backend* backend = nullptr;
    Weight attn_norm;  // (n_embd) f32
    Weight wq;         // (n_q_dim, n_embd)   rows are outputs; Q/K rows permuted by the converter for normal rope
    Weight wk;         // (n_kv_dim, n_embd)
    Weight wv;         // (n_kv_dim, n_embd)
    Weight wo;         // (n_embd, n_q_dim)
    Weight ffn_norm;   // (n_embd) f32
    Weight ffn_gate;   // (n_ff, n_embd)
    Weight ffn_up;     // (n_ff, n_embd)
    Weight ffn_down;   // (n_embd, n_ff)
    std::array<const Weight*, 3> qkv_weights() const { return {&wq, &wk, &wv}; }
    std::array<const Weight*, 2> gate_up_weights() const { return {&ffn_gate, &ffn_up}; }
};

// Activations of one batch on one backend, named as in a debug dump. Shapes are (n_batch, ...).
struct LlamaActs {
    ActBuffer x;       // (n_batch, n_embd)   the residual stream
    ActBuffer cur;     // (n_batch, n_embd)   normed input of attention / ffn
    ActBuffer q;       // (n_batch, n_q_dim)
    ActBuffer k;       // (n_batch, n_kv_dim)
    ActBuffer v;       // (n_batch, n_kv_dim)
    ActBuffer attn;    // (n_batch, n_q_dim)  attention output before wo
    ActBuffer proj;    // (n_batch, n_embd)   wo / ffn_down output before the residual add
    ActBuffer gate;    // (n_batch, n_ff)
    ActBuffer up;      // (n_batch, n_ff)
};

struct LlamaState final : ForwardState {
    int64_t n_batch = 0;
    // One set per backend that runs layers (the -ngl split): the residual
    // stream moves between them through `handoff` at the boundary.
    std::vector<std::pair<const Backend*, LlamaActs>> acts;
    std::vector<float> handoff;  // (n_batch, n_embd) host copy of x; empty with one backend
    LlamaActs& on(const Backend* b) {
        for (auto& [be, a] : acts)
            if (be == b) return a;
        throw ModelError("llama forward: no activations on backend " + std::string(b->name()));
    }
    ActBuffer out;     // (n_batch, n_embd)   final-normed rows whose logits are wanted
    ActBuffer logits;  // (n_batch, n_vocab)
};

class LlamaModel final : public TransformerModel {
public:
    LlamaModel(const GgufFile& file, const Placement& placement) {
        Backend& in = *placement.input;
        const WeightBinder bind(file);
        const GgufTensorInfo* emb = file.find_tensor("token_embd.weight");
        if (!emb)
            throw ModelError(file_label(file) + ": tensor token_embd.weight is missing; the file is incomplete or not a llama model");
        if (emb->n_dims != 2 || emb->ne[1] <= 0)
            throw ModelError(file_label(file) + ": tensor token_embd.weight must be 2-dimensional [n_embd, n_vocab]");
        hp_ = read_hparams(file, "llama", emb->ne[1]);
        const int64_t n_embd = hp_.n_embd, n_vocab = hp_.n_vocab;

        token_embd_ = bind.require("token_embd.weight", {n_embd, n_vocab}, in);
        if (!placement.layers.empty() && int64_t(placement.layers.size()) != hp_.n_layer)
            throw ModelError("placement names " + std::to_string(placement.layers.size()) + " layers, the model has " +
                             std::to_string(hp_.n_layer));
        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            Backend* be = placement.layers.empty() ? &in : placement.layers[size_t(il)];
            const std::string p = "blk." + std::to_string(il) + ".";
            LlamaLayer l;
            l.backend = be;
            l.attn_norm = bind.require_f32(p + "attn_norm.weight", n_embd, *be);
            l.wq = bind.require(p + "attn_q.weight", {n_embd, hp_.n_q_dim()}, *be);
            l.wk = bind.require(p + "attn_k.weight", {n_embd, hp_.n_kv_dim()}, *be);
            l.wv = bind.require(p + "attn_v.weight", {n_embd, hp_.n_kv_dim()}, *be);
            l.wo = bind.require(p + "attn_output.weight", {hp_.n_q_dim(), n_embd}, *be);
            l.ffn_norm = bind.require_f32(p + "ffn_norm.weight", n_embd, *be);
            l.ffn_gate = bind.require(p + "ffn_gate.weight", {n_embd, hp_.n_ff}, *be);
            l.ffn_up = bind.require(p + "ffn_up.weight", {n_embd, hp_.n_ff}, *be);
            l.ffn_down = bind.require(p + "ffn_down.weight", {hp_.n_ff, n_embd}, *be);
            layers_.push_back(l);
        }
        out_backend_ = placement.output ? placement.output : &in;
        output_norm_ = bind.require_f32("output_norm.weight", n_embd, *out_backend_);
        // Tied embeddings: files without output.weight reuse token_embd.weight as the head.
        if (auto head = bind.optional("output.weight", {n_embd, n_vocab}, *out_backend_))
            output_ = *head;
        else
            output_ = out_backend_ == &in ? token_embd_ : bind.require("token_embd.weight", {n_embd, n_vocab}, *out_backend_);

        // llama3-style rope scaling ships per-pair frequency divisors.
        if (file.find_tensor("rope_freqs.weight")) {
            const Weight w = bind.require_f32("rope_freqs.weight", hp_.rope.n_rot / 2, in);
            hp_.rope.freq_factors = static_cast<const float*>(w.host.data);
        }
        backend_ = &in;
    }

    const Hparams& hparams() const override { return hp_; }

    std::unique_ptr<ForwardState> new_state(int64_t n_batch) const override {
        if (n_batch <= 0) throw ModelError("batch size must be positive");
        auto s = std::make_unique<LlamaState>();
        s->n_batch = n_batch;
        std::vector<Backend*> used = {backend_};
        for (const LlamaLayer& L : layers_) used.push_back(L.backend);
        used.push_back(out_backend_);
        for (Backend* b : used) {
            bool have = false;
            for (auto& [be, a] : s->acts) have = have || be == b;
            if (have) continue;
            LlamaActs a;
            a.x = b->alloc_act(n_batch, hp_.n_embd);
            a.cur = b->alloc_act(n_batch, hp_.n_embd);
            a.q = b->alloc_act(n_batch, hp_.n_q_dim());
            a.k = b->alloc_act(n_batch, hp_.n_kv_dim());
            a.v = b->alloc_act(n_batch, hp_.n_kv_dim());
            a.attn = b->alloc_act(n_batch, hp_.n_q_dim());
            a.proj = b->alloc_act(n_batch, hp_.n_embd);
            a.gate = b->alloc_act(n_batch, hp_.n_ff);
            a.up = b->alloc_act(n_batch, hp_.n_ff);
            s->acts.emplace_back(b, std::move(a));
        }
        if (s->acts.size() > 1) s->handoff.resize(size_t(n_batch * hp_.n_embd));
        s->out = out_backend_->alloc_act(n_batch, hp_.n_embd);
        s->logits = out_backend_->alloc_act(n_batch, hp_.n_vocab);
        return s;
    }

    void forward(ForwardState& state, const Batch& batch, const KvView& kv, float* logits) const override {
        auto& s = static_cast<LlamaState&>(state);
        const int64_t n = int64_t(batch.tokens.size());
        if (n <= 0 || n > s.n_batch || batch.pos.size() != size_t(n) || batch.seq.size() != size_t(n) ||
            batch.cells.size() != size_t(n) || batch.outputs.size() > size_t(n))
            throw ModelError("llama forward: inconsistent batch of " + std::to_string(n) + " tokens (state holds " +
                             std::to_string(s.n_batch) + ")");
        for (int32_t t : batch.tokens)
            if (t < 0 || t >= hp_.n_vocab)
                throw ModelError("token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(hp_.n_vocab) + ")");

        // Moves the residual stream of the batch to backend `to` (through host memory).
        Backend* at = backend_;
        auto move_to = [&](Backend* to) {
            if (to == at) return;
            at->read_act(s.on(at).x.act().rows(0, n), s.handoff.data());
            at->synchronize();
            to->write_act(s.on(to).x.act().rows(0, n), s.handoff.data());
            at = to;
        };
        const AttentionParams ap{int(hp_.n_head), int(hp_.n_head_kv), int(hp_.head_dim),
                                 1.0f / std::sqrt(float(hp_.head_dim))};

        backend_->get_rows(token_embd_, batch.tokens, s.on(backend_).x.act().rows(0, n));
        // This layer's Q, K and V already computed: the last residual add, the norm and
        // the projections ran as one call (matmul_add_rms_norm_matmul_n).
        bool projected = false;
        for (size_t il = 0; il < layers_.size(); ++il) {
            const LlamaLayer& L = layers_[il];
            move_to(L.backend);
            Backend& b = *L.backend;
            const LlamaActs& A = s.on(&b);
            const Act x = A.x.act().rows(0, n), cur = A.cur.act().rows(0, n), q = A.q.act().rows(0, n),
                      k = A.k.act().rows(0, n), v = A.v.act().rows(0, n), attn = A.attn.act().rows(0, n),
                      proj = A.proj.act().rows(0, n), gate = A.gate.act().rows(0, n), up = A.up.act().rows(0, n);
            // Attention block.
            const Act qkv[] = {q, k, v};
            if (!projected) {
                b.rms_norm(x, L.attn_norm, hp_.rms_eps, cur);
                b.matmul_n(cur, L.qkv_weights(), qkv);
            }
            b.rope_kv_attention(q, k, v, batch.pos, batch.seq, hp_.rope, ap, kv, int(il), batch.cells, attn);
            // Feed-forward block.
            const Act gate_up[] = {gate, up};
            b.matmul_add_rms_norm_matmul_n(L.wo, attn, proj, x, L.ffn_norm, hp_.rms_eps, cur, L.gate_up_weights(),
                                           gate_up);
            b.swiglu(gate, up, gate);
            projected = il + 1 < layers_.size() && layers_[il + 1].backend == &b;
            if (projected) {
                const LlamaLayer& next = layers_[il + 1];
                b.matmul_add_rms_norm_matmul_n(L.ffn_down, gate, proj, x, next.attn_norm, hp_.rms_eps, cur,
                                               next.qkv_weights(), qkv);
            } else {
                b.matmul(L.ffn_down, gate, proj);
                b.add(x, proj, x);
            }
        }
        const int64_t n_out = int64_t(batch.outputs.size());
        if (n_out == 0) return;
        move_to(out_backend_);
        const Act x = s.on(out_backend_).x.act().rows(0, n);
        const Act out = s.out.act().rows(0, n_out), lg = s.logits.act().rows(0, n_out);
        out_backend_->copy_rows(x, batch.outputs, out);
        out_backend_->rms_norm(out, output_norm_, hp_.rms_eps, out);
        if (batch.hidden) out_backend_->read_act(out, batch.hidden);
        if (!logits) {
            out_backend_->synchronize();
            return;
        }
        out_backend_->matmul(output_, out, lg);
        out_backend_->read_act(lg, logits);
        out_backend_->synchronize();
    }

private:
    Hparams hp_;
    Backend* backend_ = nullptr;
    Backend* out_backend_ = nullptr;
    Weight token_embd_;
    std::vector<LlamaLayer> layers_;
    Weight output_norm_;
    Weight output_;
};

}  // namespace

std::unique_ptr<TransformerModel> load_llama(const GgufFile& file, const Placement& placement) {
    if (!placement.input) throw ModelError("load_llama: no backend given");
    return std::make_unique<LlamaModel>(file, placement);
}

}  // namespace kiln
