#pragma once
// The CPU backend: weights stay in the mmapped file, except Q4_0 on x86, which
// upload_weight repacks once into 16-row groups (q4_0_x16.h, same size as the file's). matmul on a quantized
// weight rounds the activations to 8-bit blocks once per call (q8_act.h) and
// runs integer dot kernels over tiles of (weight rows x tokens); float weights
// (F32/F16/BF16) are converted a tile of rows at a time into per-thread scratch
// and multiplied as floats. Tiles are spread over a thread pool made once.
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {

class CpuBackend final : public Backend {
public:
    // n_threads <= 0: one per hardware thread.
    explicit CpuBackend(int n_threads);
    // With a given kernel table (tests compare the tables with each other).
    CpuBackend(int n_threads, const CpuKernels& kernels);

    const char* name() const override { return "cpu"; }
    int n_threads() const { return pool_.n_threads(); }
    const CpuKernels& kernels() const { return k_; }

    Weight upload_weight(const TensorView& host) override;
    ActBuffer alloc_act(int64_t n_rows, int64_t n_cols) override;
    void write_act(Act dst, const float* src) override;
    void read_act(const Act& src, float* dst) override;
    void synchronize() override {}

    void get_rows(const Weight& table, std::span<const int32_t> ids, Act out) override;
    void matmul(const Weight& w, const Act& x, Act y) override;
    void rms_norm(const Act& x, const Weight& weight, float eps, Act out) override;
    void rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) override;
    void kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells) override;
    void attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                   std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) override;
    void swiglu(const Act& gate, const Act& up, Act out) override;
    void add(const Act& a, const Act& b, Act out) override;
    void softmax(Act x) override;
    void copy_rows(const Act& src, std::span<const int32_t> rows, Act out) override;

    // Rows of weight dequantized per matmul task.
    static constexpr int64_t kTileRows = 16;
    // Tokens per integer matmul task: the chunk's quantized activations stay in L2.
    static constexpr int64_t kQuantTokChunk = 64;

private:
    void one_token_attention(const Act& q, const KvView& kv, const KvLayerView& l, const AttentionParams& p, int hk,
                             int64_t t, int32_t tp, const int32_t* cell, const int32_t* limit, int64_t n_vis,
                             float* score, float* row, Act out) const;
    // Dequantizes rows [r0, r0 + n) of w into dst (n * w.ne[0] floats); returns
    // the float rows (dst, or the weight itself when it is already dense F32).
    const float* dequantize_rows(const TensorView& w, int64_t r0, int64_t n, float* dst) const;
    void ensure_scratch(size_t floats_per_thread);
    void matmul_quantized(const Weight& w, int slot, const Act& x, Act y);
    // 64-byte aligned scratch for a call's quantized activations.
    uint8_t* act_q8_scratch(size_t bytes);

    const CpuKernels& k_;
    ThreadPool pool_;
    std::vector<std::vector<float>> scratch_;  // one per thread
    std::vector<std::pair<int64_t, int64_t>> attention_chunks_;  // [t0, t1) token runs of one attention call
    std::vector<float> rope_cs_;               // (n_rot/2 cos, n_rot/2 sin)
    std::vector<uint8_t> act_q8_;              // (n_tok, q8_row_bytes(n_in)) + alignment slack
    // Q4_0 weights in the q4_0_x16 layout, made at upload when the table has its kernel.
    std::vector<std::unique_ptr<uint8_t, decltype(&std::free)>> repacked_;
};

}  // namespace kiln::cpu
