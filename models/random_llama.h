#pragma once
// A Llama model with random weights and a real vocabulary, for benchmarks at
// sizes nobody wants to download: the tensors and metadata a llama.cpp file of
// that shape and quant mix has, with quant blocks drawn at random while the
// file is written (a 7B file streams to disk; it is never held in memory).
#include <cstdint>
#include <functional>

#include "formats/gguf.h"
#include "models/quant_mix.h"

namespace kiln {

struct RandomLlamaShape {  // defaults: Llama-2-7B
    int64_t n_layer = 32;
    int64_t n_embd = 4096;
    int64_t n_ff = 11008;
    int64_t n_head = 32;
    int64_t n_head_kv = 0;  // 0: n_head (no grouped-query attention)
    int64_t n_ctx = 4096;  // llama.context_length
};

struct RandomLlamaSpec {
    RandomLlamaShape shape;
    const QuantMix* mix = nullptr;
    uint64_t seed = 0;  // the same seed, shape and mix give the same bytes
};

// Called as tensor data is generated: bytes done of the total.
using RandomLlamaProgress = std::function<void(uint64_t done, uint64_t total)>;

// A writer holding the metadata (every tokenizer.* key of `vocab`, so
// n_vocab is its token count) and the tensors of the model; the tensor data
// is generated when the writer writes. Throws ModelError naming the problem
// for a shape the mix cannot hold (a row length that is not a multiple of a
// block size) or a vocab file without tokenizer.ggml.tokens.
GgufWriter random_llama_writer(const GgufFile& vocab, const RandomLlamaSpec& spec,
                               RandomLlamaProgress progress = {});

}  // namespace kiln
