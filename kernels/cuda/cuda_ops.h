#pragma once
// Launchers of the CUDA kernels (kernels/cuda/*.cu). CudaBackend checks shapes
// and stages host arrays; these only enqueue work on `stream`. Every pointer
// here is device memory; Acts are device activations (rows 16-byte aligned).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "formats/ggml_type.h"
#include "kernels/tensor_view.h"

namespace kiln::cuda {

// Whether launch_kernel (launch.cuh) asks for programmatic dependent launch.
// One setting per process: CudaBackend sets it at construction (on for sm_90+
// devices unless KILN_CUDA_PDL=0); off until then.
void set_pdl_launches(bool on);
bool pdl_launches();

// Reads `bytes` (a multiple of 16) of device memory once, with n_sm * 4 blocks
// of 512 threads, writing nothing (sink only for an impossible sum): the
// read-only bandwidth probe of cuda_measure_bandwidth.
void read_stream(const void* data, size_t bytes, uint32_t* sink, int n_sm, cudaStream_t stream);

// Weights in device memory: the GGUF blocks as they are, except Q3_K (110 bytes)
// and Q6_K (210), whose blocks sit in 112- and 224-byte slots so
// that every block starts 16-byte aligned (quant_chunk.cuh reads a chunk in 16-byte
// loads: Q6_K four instead of eighteen words, Q3_K five instead of ~40 half-words).
// CudaBackend::upload_weight lays rows out so.
inline constexpr size_t kQ3KDeviceBytes = 112;
inline constexpr size_t kQ6KDeviceBytes = 224;
// Bytes of n_elements elements (whole blocks: a row, or a whole weight) in device memory.
size_t device_bytes(GgmlType type, int64_t n_elements);
// Blocks in their device slots from GGUF blocks (n_blocks in all, rows back to back).
void pad_blocks_for_device(GgmlType type, const uint8_t* src, int64_t n_blocks, uint8_t* dst);

// A weight matrix in device memory: n_out rows of n_in elements, row_bytes apart.
struct DevWeight {
    GgmlType type;
    const void* data;
    size_t row_bytes;
    int64_t n_in, n_out;
};

// True for the types the q8 matrix-vector kernel reads (block-quantized ones).
bool matvec_q8_supported(GgmlType type);
// Token counts up to this go through the matrix-vector kernels (the decode path).
inline constexpr int kMatvecMaxTokens = 8;

// Q8_1-style activations: per 32 values, int8 q and (d, d*sum(q[0..15]), d*sum(q[16..31])).
// xq holds (n_tok, n_in) int8, xs (n_tok, n_in / 32) float4.
void quantize_act_q8(const Act& x, int8_t* xq, float4* xs, cudaStream_t stream);
// ys[i] (n_tok <= kMatvecMaxTokens rows) = x · Ws[i]^T with x given quantized (dp4a dot
// products), in one launch: 1..kMatvecMaxGroup weights of one type and n_in.
inline constexpr int kMatvecMaxGroup = 3;
// One token's RMSNorm folded into the products on either side of it (decode):
// the product that ends a residual block adds its rows to the residual row x
// and leaves x · weight quantized as quantize_act_q8 would, but not yet scaled,
// with each 32 values' sum of squares (NormOut); the products that read the
// normed row scale their sums by 1 / sqrt(mean(x^2) + eps) from those (NormIn).
// Quantizing is scale-free (the int8 values of s·v are those of v), so this is
// the norm then the products, up to rounding.
struct NormIn {
    const float* ss = nullptr;  // n_in / 32 sums of squares; null: a plain product
    float eps = 0.0f;
};
struct NormOut {
    float* x = nullptr;              // the residual row (n_out floats), += x_in · W^T
    const float* weight = nullptr;   // the norm's weight (n_out floats)
    int8_t* xq = nullptr;            // x · weight quantized: n_out int8 and n_out / 32 scales
    float4* xs = nullptr;
    float* ss = nullptr;             // n_out / 32 sums of squares of x
};
void matvec_q8(const DevWeight* ws, const Act* ys, int n, const int8_t* xq, const float4* xs, int n_tok,
               cudaStream_t stream, const NormIn& norm = {});
// A consumer of the folded norm whose weights are two runs of types (a K-quant
// mix's Q and K with a V of more bits) as one launch instead of one a run: false,
// and nothing launched, unless they are a pair of types the mixes make whose first
// run's rows are whole blocks of the launch.
bool matvec_q8_two(const DevWeight* ws, const Act* ys, int n, const int8_t* xq, const float4* xs,
                   const NormIn& norm, cudaStream_t stream);
// The producer above for one token: n_out a multiple of 32. xq/xs (the input)
// must not be out.xq/out.xs. One block of 1024 threads per 32 rows: one wave
// while n_out / 32 is at most the device's SM count.
void matvec_q8_norm_out(const DevWeight& w, const int8_t* xq, const float4* xs, const NormOut& out,
                        cudaStream_t stream);
// y = x · W^T for F32/F16/BF16 weights and float activations, n_tok <= kMatvecMaxTokens.
void matvec_float(const DevWeight& w, const Act& x, Act y, cudaStream_t stream);
// The tensor-core path reads activations as F16, padded to whole tiles: rows
// (n_tok_pad, a multiple of kMmaTokenPad) of ld halves (n_in rounded up to 64),
// zeros in the padding.
inline constexpr int64_t kMmaTokenPad = 128;
struct MmaActShape {
    int64_t n_tok_pad, ld;
};
MmaActShape mma_act_shape(int64_t n_tok, int64_t n_in);
void convert_act_f16(const Act& x, __half* xh, cudaStream_t stream);
// ys[i] = x · Ws[i]^T for any token count, x given by convert_act_f16, in one
// launch: 1..kMatvecMaxGroup weights of one type and n_in. Weight tiles are
// dequantized to F16 in shared memory and multiplied on the tensor cores (F32
// accumulation). The same call gives the same bits every time; a weight alone
// and in a group may differ in rounding (a group's split over k may differ).
// Small products are split over k (a second kernel adds the parts in order):
// plan_matmul_mma (n_sm: the device's multiprocessors) says how, and how much
// scratch the parts' sums take.
struct MmaPlan {
    bool wide;            // 128-token tiles (else 64)
    int bn;               // outputs per tile
    int tiles;            // output tiles of the group
    int n_split;          // parts of k
    int64_t split_steps;  // 64-wide k steps a part
    int64_t scratch_floats(int64_t n_tok) const { return n_split > 1 ? int64_t(n_split) * tiles * bn * n_tok : 0; }
};
MmaPlan plan_matmul_mma(const DevWeight* ws, int n, int64_t n_tok, int n_sm);
void matmul_mma(const MmaPlan& plan, const DevWeight* ws, const Act* ys, int n, const __half* xh, int64_t n_tok,
                float* scratch, cudaStream_t stream);

// out[t, :] = dequantized row ids[t] of the table; ids null: one row, id0 (a decode
// step's token goes as a kernel argument, no copy on the stream before it).
void get_rows(const DevWeight& table, const int32_t* ids, int32_t id0, int n_ids, Act out, cudaStream_t stream);
// rms_norm and swiglu also write their output quantized (as quantize_act_q8) into
// xq/xs when given; rms_norm can for rows rms_norm_can_quantize accepts, swiglu
// for rows of a multiple of 32.
bool rms_norm_can_quantize(int64_t n_cols);
// x += b, out = rms_norm(x) in one pass, for rows rms_norm_can_fuse_add accepts.
bool rms_norm_can_fuse_add(int64_t n_cols);
void add_rms_norm(Act x, const Act& b, const float* weight, float eps, Act out, cudaStream_t stream,
                  int8_t* xq = nullptr, float4* xs = nullptr);
void rms_norm(const Act& x, const float* weight, float eps, Act out, cudaStream_t stream, int8_t* xq = nullptr,
              float4* xs = nullptr);
// cs: per token n_rot floats, cos of the n_rot/2 pairs then their sin.
void rope(Act x, int n_head, int head_dim, int n_rot, bool neox, const float* cs, cudaStream_t stream);
// rope on q and k (in place) and k, v rows into rows cells[t] of the caches, in one launch.
struct RopeKvArgs {
    float* q = nullptr;
    int64_t q_stride = 0;
    float* k = nullptr;
    int64_t k_stride = 0;
    const float* v = nullptr;
    int64_t v_stride = 0;
    int n_head = 0, head_dim = 0, n_rot = 0;
    bool neox = false;
    const float* cs = nullptr;  // per token: cos of the n_rot/2 pairs, then their sin
    void* k_cache = nullptr;
    void* v_cache = nullptr;
    bool f16 = true;
    int64_t n_kv_dim = 0;
    const int32_t* cells = nullptr;
};
void rope_kv_store(const RopeKvArgs& a, int n_tok, cudaStream_t stream);
// Rows of src go to rows cells[t] of dst ((n_cells, n_kv_dim) of F16 or F32).
void kv_store(void* dst, bool f16, int64_t n_kv_dim, const Act& src, const int32_t* cells, cudaStream_t stream);
void swiglu(const Act& gate, const Act& up, Act out, cudaStream_t stream, int8_t* xq = nullptr, float4* xs = nullptr);
void add(const Act& a, const Act& b, Act out, cudaStream_t stream);
void softmax(Act x, cudaStream_t stream);
void copy_rows(const Act& src, const int32_t* rows, int n_rows, Act out, cudaStream_t stream);

struct AttentionArgs {
    Act q, out;                  // (n_tok, n_head * head_dim)
    const void* k = nullptr;     // (n_cells, n_kv_dim)
    const void* v = nullptr;
    bool f16 = true;
    int64_t n_kv_dim = 0;
    int n_scan = 0;
    const int32_t* cell_pos = nullptr;    // (n_scan)
    const uint64_t* cell_seqs = nullptr;  // (n_scan)
    const int32_t* tok_pos = nullptr;     // (n_tok)
    const int32_t* tok_seq = nullptr;     // (n_tok)
    int n_head = 0, group = 1, head_dim = 0;
    float scale = 1.0f;
    // Split of the cells over n_split blocks per (token, head) so that a decode
    // step fills the GPU (flash-decoding); partials (max, sum, head_dim
    // accumulators) go to `partial` and a second kernel merges them.
    int n_split = 1;
    float* partial = nullptr;  // (n_tok, n_head, n_split, head_dim + 2) when n_split > 1
    // Decode (attention_decode and the merge): out also written quantized as
    // quantize_act_q8 would (head_dim a multiple of 32), for the output projection.
    int8_t* xq = nullptr;
    float4* xs = nullptr;
    // Decode of one token with rope and the KV store folded in (attention_decode
    // only; k null: q is rotated already and the cell stored): q is read as the
    // projection left it and rotated, and the block whose split holds `cell`
    // writes that cell's rotated k row and v row into the cache before reading it.
    struct {
        const float* k = nullptr;  // (n_kv_dim) the token's K and V projections
        const float* v = nullptr;
        int n_rot = 0;
        bool neox = false;
        const float* cs = nullptr;  // cos of the n_rot/2 pairs, then their sin
        int cell = 0;
    } rope;
};
// Batches of this many tokens or more take the tiled kernel (K/V tiles shared by
// 32 queries; give them n_split 1); fewer take attention_decode (attention_decode.cu)
// with splits of the cells.
inline constexpr int kAttentionTiledMinTokens = 16;
// The tensor-core kernel for such batches: false (nothing launched) where it does
// not apply (F32 cache, head_dim other than 64/128, unaligned rows, too little
// shared memory); attention() then takes the float tiled kernel.
bool attention_mma(const AttentionArgs& a, cudaStream_t stream);
// Splits worth using for this shape on a GPU with n_sm multiprocessors (at most
// kAttentionMaxSplits: the merge keeps each split's max and sum in shared memory).
inline constexpr int kAttentionMaxSplits = 64;
int attention_splits(int n_tok, int n_head, int head_dim, int n_scan, int n_sm);
inline constexpr int kAttentionMaxHeadDim = 256;
void attention(const AttentionArgs& a, cudaStream_t stream);
// The decode kernel (attention_decode.cu) alone: with n_split > 1 it writes the
// partials and leaves the merge to attention().
void attention_decode(const AttentionArgs& a, cudaStream_t stream);

}  // namespace kiln::cuda
