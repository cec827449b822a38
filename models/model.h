#pragma once
// What the engine sees of an architecture: hyper-parameters, per-batch
// scratch, and one forward pass over a batch of tokens whose KV cells the
// engine has already chosen.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/backend.h"
#include "models/hparams.h"

namespace kiln {

// One forward pass's tokens. All spans have one entry per token, except outputs.
struct Batch {
    std::span<const int32_t> tokens;
    std::span<const int32_t> pos;     // position of each token in its sequence
    std::span<const int32_t> seq;     // sequence id of each token, in [0, 64)
    std::span<const int32_t> cells;   // KV cell each token's K/V goes to
    std::span<const int32_t> outputs; // batch rows whose logits are wanted, in this order
    // Optional: the final-normed hidden states of the output rows, (outputs.size(), n_embd)
    // floats (embeddings). forward() may then be given logits == nullptr to skip the output head.
    float* hidden = nullptr;
};

// Activation memory for batches of up to n_batch tokens, made by the model.
struct ForwardState {
    virtual ~ForwardState() = default;
};

// Which backend runs each layer (the -ngl split). The first version requires
// one backend for every layer; the per-layer slot is where offload plugs in.
struct Placement {
    Backend* input = nullptr;               // token embedding lookup
    std::vector<Backend*> layers;           // n_layer entries, or empty: all on `input`
    Backend* output = nullptr;              // final norm and output head; nullptr: `input`
};

class TransformerModel {
public:
    virtual ~TransformerModel() = default;
    virtual const Hparams& hparams() const = 0;
    int64_t n_vocab() const { return hparams().n_vocab; }

    virtual std::unique_ptr<ForwardState> new_state(int64_t n_batch) const = 0;
    // Runs the batch (at most n_batch tokens of `state`) and writes the logits of
    // batch.outputs to logits (outputs.size() rows of n_vocab floats, host memory).
    virtual void forward(ForwardState& state, const Batch& batch, const KvView& kv, float* logits) const = 0;
};

}  // namespace kiln
