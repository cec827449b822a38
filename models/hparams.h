#pragma once
// Hyper-parameters of a decoder-only transformer, read once from the
// "{arch}.*" GGUF keys into a plain struct and validated once.
#include <cstdint>
#include <string>

#include "formats/gguf.h"
#include "kernels/backend.h"

namespace kiln {

// A model file whose metadata or tensors do not describe a usable model.
class ModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Hparams {
    std::string arch;          // general.architecture
    int64_t n_vocab = 0;       // from the token_embd shape (checked against {arch}.vocab_size if present)
    int64_t n_ctx_train = 0;   // {arch}.context_length
    int64_t n_embd = 0;        // {arch}.embedding_length
    int64_t n_layer = 0;       // {arch}.block_count
    int64_t n_head = 0;        // {arch}.attention.head_count
    int64_t n_head_kv = 0;     // {arch}.attention.head_count_kv (default n_head)
    int64_t head_dim = 0;      // {arch}.attention.key_length (default n_embd / n_head)
    int64_t n_ff = 0;          // {arch}.feed_forward_length
    float rms_eps = 1e-5f;     // {arch}.attention.layer_norm_rms_epsilon
    std::string rope_scaling = "none";  // {arch}.rope.scaling.type: none, linear, yarn
    RopeParams rope;           // n_rot = {arch}.rope.dimension_count (default head_dim); freq_factors unset

    int64_t n_q_dim() const { return n_head * head_dim; }
    int64_t n_kv_dim() const { return n_head_kv * head_dim; }
};

// Reads and validates the keys shared by llama-like architectures. `n_vocab`
// comes from the caller (the token embedding's shape). Throws ModelError
// naming the file and the key.
Hparams read_hparams(const GgufFile& file, const std::string& arch, int64_t n_vocab);

// "kiln-test.gguf" for error messages.
std::string file_label(const GgufFile& file);

}  // namespace kiln
