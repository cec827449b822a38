#pragma once
// The CUDA backend: weights copied once into device memory as the GGUF blocks
// they are, activations in device memory, every op a kernel on one stream
// (kernels/cuda/*.cu). Host arrays an op needs (token ids, rope angles, cell
// lists) go through a pinned staging arena that is recycled at synchronize().
//
// The KV cache: the engine's KvCache holds host memory; the backend keeps a
// device copy of each layer it is asked about (made on first use, keyed by the
// host K pointer of layer 0) and reads and writes only that copy. Layers run
// on other backends keep using the host memory. Cell bookkeeping (positions,
// sequence sets) is read from the host view at every attention call.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/step_graph.h"

struct CUstream_st;
struct __half;

namespace kiln::cuda {

struct AttentionArgs;  // cuda_ops.h
struct NormIn;         // cuda_ops.h
struct DevWeight;      // cuda_ops.h

// A failed CUDA call or a missing device: what failed, and what to do.
class CudaError : public BackendError {
public:
    using BackendError::BackendError;
};

struct CudaDeviceInfo {
    int index = 0;
    std::string name;
    int cc_major = 0, cc_minor = 0;
    int n_sm = 1;  // multiprocessors
    size_t total_bytes = 0, free_bytes = 0;
};
// Every CUDA device (empty when there is no driver or no device).
std::vector<CudaDeviceInfo> cuda_list_devices();

// Device memory bandwidth (bandwidth.cu): a read-only kernel's rate, the limit
// for decode's weight reads, and a device-to-device copy's (read + written bytes).
struct CudaBandwidth {
    double read_bytes_per_second = 0;
    double copy_bytes_per_second = 0;
    size_t buffer_bytes = 0;
};
// Best of `repetitions` over buffers far larger than L2 (at most an eighth of
// the free memory each). Throws CudaError when the device is missing or full.
CudaBandwidth cuda_measure_bandwidth(int device, size_t buffer_bytes = size_t(1) << 30, int repetitions = 5);

struct CudaOptions {
    int device = 0;
};

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(const CudaOptions& options = {});
    ~CudaBackend() override;
    CudaBackend(const CudaBackend&) = delete;
    CudaBackend& operator=(const CudaBackend&) = delete;

    const char* name() const override { return "cuda"; }
    const CudaDeviceInfo& device() const { return info_; }
    // Device memory free now (for deciding what fits before allocating).
    size_t free_bytes() const;
    // Device memory a weight of n_elements elements of `type` takes once uploaded
    // (some block types are padded there: cuda_ops.h, device_bytes).
    static uint64_t weight_bytes(GgmlType type, int64_t n_elements);

    Weight upload_weight(const TensorView& host) override;
    ActBuffer alloc_act(int64_t n_rows, int64_t n_cols) override;
    void write_act(Act dst, const float* src) override;
    void read_act(const Act& src, float* dst) override;
    void synchronize() override;

    void get_rows(const Weight& table, std::span<const int32_t> ids, Act out) override;
    void matmul(const Weight& w, const Act& x, Act y) override;
    void matmul_n(const Act& x, std::span<const Weight* const> ws, std::span<const Act> ys) override;
    void rms_norm(const Act& x, const Weight& weight, float eps, Act out) override;
    void add_rms_norm(Act x, const Act& b, const Weight& weight, float eps, Act out) override;
    // One token: the norm folded into the two products (cuda_ops.h, NormOut and
    // NormIn), no norm kernel; proj and normed are left untouched.
    // KILN_CUDA_FUSE_NORMS=0 turns that off (for A/B runs and bisecting).
    void matmul_add_rms_norm_matmul_n(const Weight& w, const Act& in, Act proj, Act x, const Weight& norm, float eps,
                                      Act normed, std::span<const Weight* const> ws, std::span<const Act> ys) override;
    void rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) override;
    void kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells) override;
    void rope_kv_store(Act q, Act k, const Act& v, int n_head, int head_dim, std::span<const int32_t> pos,
                       const RopeParams& p, const KvView& kv, int layer, std::span<const int32_t> cells) override;
    void attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                   std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) override;
    // Decode steps (one token) rotate and store in the attention kernel unless
    // KILN_CUDA_FUSE_ROPE=0 (for A/B runs and bisecting: the same logits up to
    // rounding, see the tests).
    void rope_kv_attention(Act q, Act k, const Act& v, std::span<const int32_t> pos, std::span<const int32_t> seq,
                           const RopeParams& rope, const AttentionParams& p, const KvView& kv, int layer,
                           std::span<const int32_t> cells, Act out) override;
    void swiglu(const Act& gate, const Act& up, Act out) override;
    void add(const Act& a, const Act& b, Act out) override;
    void softmax(Act x) override;
    void copy_rows(const Act& src, std::span<const int32_t> rows, Act out) override;

private:
    // Copies `bytes` of host data to device memory valid until synchronize().
    void* stage(const void* src, size_t bytes);
    // Several host arrays as one copy (each copy is a node between two kernels of a
    // step, with its own latency); sets each *dst to its array's device address
    // (nullptr for an empty one).
    struct StagePart {
        const void* src;
        size_t bytes;
        const void** dst;
    };
    void stage_parts(std::span<const StagePart> parts);
    std::vector<uint8_t> stage_scratch_;
    void* device_alloc(size_t bytes, const char* what);
    // Launches any recorded work, then waits for the stream.
    void sync_stream(const char* what);
    void check_launch(const char* op);  // after each op's launches
    struct KvLayer {
        void* k;
        void* v;
    };
    KvLayer kv_layer(const KvView& kv, int layer, const char* op);

    CudaDeviceInfo info_;
    CUstream_st* stream_ = nullptr;
    std::vector<void*> weights_;  // freed with the backend (activations free themselves)
    // Staging: pinned host bytes and their device twin, bump-allocated.
    uint8_t* stage_host_ = nullptr;
    uint8_t* stage_dev_ = nullptr;
    size_t stage_cap_ = 0, stage_used_ = 0;
    // Arrays staged since the arena was last recycled, newest last (stage() reuses equal ones).
    struct StagedArray {
        size_t offset, bytes;
    };
    static constexpr size_t kMaxStagedReuse = 16;
    std::vector<StagedArray> staged_;
    // Matmul inputs converted to what the kernels read, grown on demand: q8
    // blocks for the matrix-vector path, padded F16 rows for the tensor cores.
    int8_t* xq_ = nullptr;
    void* xs_ = nullptr;
    size_t xq_cap_ = 0;
    void* xh_ = nullptr;
    size_t xh_cap_ = 0;
    // Partial sums of small tensor-core products split over k (matmul_mma).
    float* split_ = nullptr;
    int64_t split_cap_ = 0;
    void run_matmul_mma(const DevWeight* ws, const Act* ys, int n, const __half* xh, int64_t n_tok);
    // The rows converted last and into which form (ops that may rewrite them
    // reset xq_src_): Q, K and V (and gate and up) read the same rows.
    const float* xq_src_ = nullptr;
    bool xq_f16_ = false;
    int64_t xq_rows_ = 0, xq_cols_ = 0;
    // The folded norm's own buffers (matmul_add_rms_norm_matmul_n): the normed row
    // quantized (its input stays in xq_ while the producer writes these) and the sums
    // of squares; for rows of up to norm_cap_.
    int8_t* norm_xq_ = nullptr;
    void* norm_xs_ = nullptr;
    float* norm_ss_ = nullptr;
    int64_t norm_cap_ = 0;
    bool fuse_norms_ = true;
    // A folded norm's consumers of two types (a K-quant mix's Q/K and V) in one launch;
    // KILN_CUDA_MIXED_RUNS=0: a launch a type.
    bool mixed_runs_ = true;
    void reserve_norm(int64_t n_cols);
    // f(group, outs, n) for each run of up to kMatvecMaxGroup consecutive weights of one type.
    template <class F>
    void for_each_type_run(std::span<const Weight* const> ws, std::span<const Act> ys, F&& f);
    // Runs of weights of one type as one launch each, reading xq/xs.
    void matvec_q8_runs(std::span<const Weight* const> ws, std::span<const Act> ys, const int8_t* xq, const void* xs,
                        int n_tok, const NormIn& norm);
    // matmul_n's argument checks (throws); whether every weight has a q8 kernel.
    bool require_matmul_n(const Act& x, std::span<const Weight* const> ws, std::span<const Act> ys,
                          const char* op) const;
    void reserve_q8(const Act& x);  // xq_/xs_ hold x's rows quantized (forgets what they held when grown)
    void quantize_input(const Act& x);        // xq_/xs_ = x quantized, unless they hold it already
    const __half* f16_input(const Act& x);    // xh_ = x as padded F16 rows, unless it holds it already
    void require_fits(const Weight& w, const Act& x, const Act& y, const char* op) const;
    void require_rope(const RopeParams& p, int head_dim, const char* op) const;
    void require_rope_kv(const Act& q, const Act& k, const Act& v, int n_head, int head_dim,
                         std::span<const int32_t> pos, const RopeParams& p, const KvView& kv,
                         std::span<const int32_t> cells, const char* op) const;
    void require_attention(const Act& q, const KvView& kv, const AttentionParams& p, std::span<const int32_t> pos,
                           std::span<const int32_t> seq, const Act& out) const;
    // attention(): the checked arguments (cache mirror, staged arrays, splits, q8 output), then the launch.
    // rope_cs: the decode attention's rope angles (rope_angles), staged with the rest.
    AttentionArgs attention_args(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                                 std::span<const int32_t> pos, std::span<const int32_t> seq, Act out,
                                 std::span<const float> rope_cs = {});
    void launch_attention(const AttentionArgs& a, const Act& out);
    void require_cells(const KvView& kv, std::span<const int32_t> cells, const char* op) const;
    bool converted(const Act& x, bool f16) const {
        return xq_src_ == x.data && xq_f16_ == f16 && xq_rows_ == x.n_rows && xq_cols_ == x.n_cols;
    }
    void mark_converted(const Act& x, bool f16) {
        xq_src_ = x.data;
        xq_f16_ = f16;
        xq_rows_ = x.n_rows;
        xq_cols_ = x.n_cols;
    }
    bool fuse_rope_ = true;
    // Split-attention partials, grown on demand.
    float* attn_partial_ = nullptr;
    size_t attn_partial_cap_ = 0;  // floats
    // Device copies of host KV caches (see the header comment).
    struct KvMirror {
        int64_t n_cells = 0, n_kv_dim = 0;
        GgmlType type = GgmlType::F16;
        std::vector<KvLayer> layers;  // {nullptr, nullptr} until first used
        uint64_t last_use = 0;
    };
    std::map<const void*, KvMirror> kv_mirrors_;
    uint64_t kv_clock_ = 0;
    void free_mirror(KvMirror& m);
    std::vector<float> rope_cs_;  // host scratch for the rope table
    std::span<const float> rope_angles(std::span<const int32_t> pos, const RopeParams& p);  // cos/sin per token (host)
    const float* rope_table(std::span<const int32_t> pos, const RopeParams& p);  // the same, staged
    StepGraph graph_;
};

}  // namespace kiln::cuda
