// The decode path: y = x · W^T for a handful of tokens, bound by reading W once.
// Block-quantized weights meet 8-bit activations (Q8_1-style: int8 per value,
// a float scale per 32) in dp4a dot products; each warp owns one or two output
// rows and its lanes walk the rows' 32-element chunks, so one chunk is decoded
// once for every token of the batch.
#include <type_traits>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/q8_act.cuh"
#include "kernels/cuda/quant_chunk.cuh"

namespace kiln::cuda {

namespace {

constexpr int kWarps = 4;  // rows per block

struct GroupRow {
    int w;        // index in the group; -1: past the last row
    int64_t row;  // row of that weight
};

// Up to kMatvecMaxGroup weights of one type and row length whose rows are
// stacked into one launch (Q, K and V; gate and up): a launch per 9 MB weight
// spends a good part of its time filling and draining the GPU.
struct MatvecGroup {
    const uint8_t* w[kMatvecMaxGroup];
    size_t row_bytes[kMatvecMaxGroup];
    float* y[kMatvecMaxGroup];
    int64_t y_stride[kMatvecMaxGroup];
    int64_t row0[kMatvecMaxGroup + 1];  // first stacked row of each weight; row0[n] = all rows
    int n;
    __device__ GroupRow find(int64_t gr) const {
        if (gr >= row0[n]) return {-1, 0};
        int i = 0;
        while (i + 1 < n && gr >= row0[i + 1]) ++i;
        return {i, gr - row0[i]};
    }
};

// One weight chunk (32 int8 quants, scale and offset per half) against one token's
// q8 chunk (x0, x1: its 32 int8 values; ds: d, d * sums of the halves).
__device__ __forceinline__ float chunk_dot(const int (&q)[8], const float (&a)[2], const float (&o)[2], int4 x0,
                                           int4 x1, float4 ds) {
    int s0 = __dp4a(q[0], x0.x, 0);
    s0 = __dp4a(q[1], x0.y, s0);
    s0 = __dp4a(q[2], x0.z, s0);
    s0 = __dp4a(q[3], x0.w, s0);
    int s1 = __dp4a(q[4], x1.x, 0);
    s1 = __dp4a(q[5], x1.y, s1);
    s1 = __dp4a(q[6], x1.z, s1);
    s1 = __dp4a(q[7], x1.w, s1);
    return ds.x * (a[0] * float(s0) + a[1] * float(s1)) + o[0] * ds.y + o[1] * ds.z;
}

// Before its wait (launch.cuh) a kernel may touch only constant data: the decode
// kernels fetch their first weight bytes into L2 there, so those stream in while
// the previous kernel finishes. Not into registers: held across the wait, loads
// cost registers and so blocks per SM (decode Q4_0 40 -> 48, Q4_K 64 -> 68, F16
// 32 -> 36 on sm_90). For the same reason the kernels recompute their row after
// the wait rather than keep what the prefetch used (Q5_K: 56 -> 72 otherwise).
__device__ __forceinline__ void prefetch_bytes_l2(const uint8_t* p, int64_t bytes, int lane) {
    for (int64_t off = 128 * lane; off < bytes; off += 32 * 128) prefetch_l2(p + off);
}

// One warp per 32-element chunk of one token.
__global__ void quantize_q8_kernel(const float* __restrict__ x, int64_t x_stride, int64_t n_chunks, int64_t n_tok,
                                   int8_t* __restrict__ xq, float4* __restrict__ xs) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t gw = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (gw >= n_chunks * n_tok) return;
    const int64_t t = gw / n_chunks, c = gw % n_chunks;
    q8_store_warp(x[t * x_stride + c * 32 + lane], lane, xq + t * n_chunks * 32 + c * 32, xs + t * n_chunks + c);
}

// Each warp takes kRowsPerWarp rows, so the activation loads (three per chunk
// and token) serve that many rows' weights: two, except for products of at most
// kOneRowMaxRows rows, where one row a warp keeps twice the warps reading (7B
// output projection, 4096 rows of 4096). Long rows are split over kSplit warps
// of a block (chunk c to warp c / 32 % kSplit), which add their sums through
// shared memory: a 7B down projection (4096 rows of 11008) is only 2048 warps at
// one warp per row pair, too few reads in flight for the memory's latency.
constexpr int64_t kSplitMinChunks = 256;  // rows of 8192 elements or more take two warps each
constexpr int64_t kOneRowMaxRows = 4096;

// What a launch does besides y = x · W^T (cuda_ops.h, NormIn and NormOut): one
// token's RMSNorm split between the product that ends a residual block and the
// products that read the normed row, so no norm kernel runs between them.
enum Fuse { kPlain, kNormIn, kNormOut };

// The producer (kNormOut) runs blocks of one 32-row group each (kNormOutWarps
// warps: one or, for long rows split over two warps, two rows a warp), so the
// group it quantizes for the consumer is its own: no other block to wait for.
constexpr int kNormOutWarps = 32;

template <class T, int kMaxTok, int kSplit, int kRowsPerWarp, int kFuse, int kBlockWarps>
__device__ __forceinline__ void matvec_q8_body(MatvecGroup g, int64_t n_chunks, const int8_t* __restrict__ xq,
                                               const float4* __restrict__ xs, int n_tok, const NormIn& nin,
                                               const NormOut& nout) {
    static_assert(kFuse == kPlain || kMaxTok == 1, "the fused norm is for one token");
    static_assert(kBlockWarps % kSplit == 0, "a block holds whole splits");
    static_assert(kFuse != kNormOut || kBlockWarps / kSplit * kRowsPerWarp == 32, "a producer block is 32 rows");
    __shared__ float part_sum[kBlockWarps][kRowsPerWarp][kMaxTok];
    let_next_grid_start();
    const int part = threadIdx.y % kSplit;
    const int64_t first = (int64_t(blockIdx.x) * (kBlockWarps / kSplit) + threadIdx.y / kSplit) * kRowsPerWarp;
    GroupRow r[kRowsPerWarp];
    const uint8_t* wr[kRowsPerWarp];
#pragma unroll
    for (int k = 0; k < kRowsPerWarp; ++k) {
        r[k] = g.find(first + k);
        // A missing second row reads the first row's weights and stores nothing.
        wr[k] = r[k].w < 0 ? wr[0] : g.w[r[k].w] + r[k].row * g.row_bytes[r[k].w];
    }
    // Past the last row: nothing to read, but the block's barrier below is still met.
    const bool active = r[0].w >= 0;
    const int lane = threadIdx.x;
    constexpr int kChunks = T::kBlock / 32;
    // Each lane's first block of each row into L2: the warp's first pass.
    if (active && lane + 32 * part < n_chunks)
#pragma unroll
        for (int k = 0; k < kRowsPerWarp; ++k) prefetch_l2(wr[k] + ((lane + 32 * part) / kChunks) * T::kBytes);
    wait_prior_grid();
    // The consumer's norm: each lane's first kNormLoads of the producer's sums of
    // squares go out now, together, and are added after the loop, so neither
    // their latency nor a wait for each in turn delays the weights' loads.
    constexpr int kNormLoads = kFuse == kNormIn ? 4 : 1;
    float ss_part[kNormLoads];
    if constexpr (kFuse == kNormIn)
#pragma unroll
        for (int j = 0; j < kNormLoads; ++j) ss_part[j] = lane + 32 * j < n_chunks ? nin.ss[lane + 32 * j] : 0.0f;
    float acc[kRowsPerWarp][kMaxTok];
#pragma unroll
    for (int k = 0; k < kRowsPerWarp; ++k)
#pragma unroll
        for (int t = 0; t < kMaxTok; ++t) acc[k][t] = 0.0f;
    for (int64_t c = lane + 32 * part; active && c < n_chunks; c += 32 * kSplit) {
        int q[kRowsPerWarp][8];
        float a[kRowsPerWarp][2], o[kRowsPerWarp][2];
#pragma unroll
        for (int k = 0; k < kRowsPerWarp; ++k)
            T::chunk(wr[k] + (c / kChunks) * T::kBytes, int(c % kChunks), q[k], a[k], o[k]);
#pragma unroll
        for (int t = 0; t < kMaxTok; ++t) {
            if (t >= n_tok) break;
            const int4* xp = reinterpret_cast<const int4*>(xq + (t * n_chunks + c) * 32);
            const int4 x0 = xp[0], x1 = xp[1];
            const float4 ds = xs[t * n_chunks + c];
#pragma unroll
            for (int k = 0; k < kRowsPerWarp; ++k) acc[k][t] += chunk_dot(q[k], a[k], o[k], x0, x1, ds);
        }
    }
#pragma unroll
    for (int k = 0; k < kRowsPerWarp; ++k)
#pragma unroll
        for (int t = 0; t < kMaxTok; ++t) acc[k][t] = warp_sum(acc[k][t]);
    if constexpr (kFuse == kNormIn) {
        // Rows past 32 * 32 * kNormLoads values load the rest here. The same order
        // of additions in every warp: every row gets the same scale.
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < kNormLoads; ++j) ss += ss_part[j];
        for (int64_t c = lane + 32 * kNormLoads; c < n_chunks; c += 32) ss += nin.ss[c];
        const float scale = 1.0f / sqrtf(warp_sum(ss) / float(n_chunks * 32) + nin.eps);
#pragma unroll
        for (int k = 0; k < kRowsPerWarp; ++k) acc[k][0] *= scale;
    }
    if constexpr (kSplit > 1) {
        if (lane == 0 && part > 0)
#pragma unroll
            for (int k = 0; k < kRowsPerWarp; ++k)
#pragma unroll
                for (int t = 0; t < kMaxTok; ++t) part_sum[threadIdx.y][k][t] = acc[k][t];
        __syncthreads();
        if (part == 0)
#pragma unroll
            for (int k = 0; k < kRowsPerWarp; ++k)
#pragma unroll
                for (int t = 0; t < kMaxTok; ++t)
#pragma unroll
                    for (int p = 1; p < kSplit; ++p) acc[k][t] += part_sum[threadIdx.y + p][k][t];
    }
    const bool store = active && lane == 0 && part == 0;
    __shared__ float block_rows[kFuse == kNormOut ? 32 : 1];  // the producer's new x rows
    if (store) {
#pragma unroll
        for (int k = 0; k < kRowsPerWarp; ++k) {
            if (r[k].w < 0) break;
#pragma unroll
            for (int t = 0; t < kMaxTok; ++t) {
                if (t >= n_tok) break;
                float& y = g.y[r[k].w][t * g.y_stride[r[k].w] + r[k].row];
                if constexpr (kFuse == kNormOut) {
                    y += acc[k][t];  // y is the residual row
                    block_rows[threadIdx.y / kSplit * kRowsPerWarp + k] = y;
                } else {
                    y = acc[k][t];
                }
            }
        }
    }
    if constexpr (kFuse == kNormOut) {
        // The block's 32 rows of x, times the norm weight, quantized (not yet
        // scaled) for the consumer, and their sum of squares.
        __syncthreads();
        if (threadIdx.y != 0) return;
        const int64_t group = blockIdx.x;
        const float v = block_rows[lane];
        q8_store_warp(v * nout.weight[group * 32 + lane], lane, nout.xq + group * 32, nout.xs + group);
        const float ss = warp_sum(v * v);
        if (lane == 0) nout.ss[group] = ss;
    }
}

// Two register budgets for one body. ptxas left to itself keeps several blocks of
// 128 threads per SM (Q4_0 with two rows a warp: 40 registers, 12 blocks); told
// that one block per SM will do, it spends more registers on keeping a chunk's
// loads and dot products apart (Q4_K 56 -> 63, Q6_K 62 -> 80). The K-quants'
// longer decoding gains from that more than from the warps it costs (H200, 7B
// tg128: Q4_K_M 439 / 428 -> 458 / 465, Q5_K_M +7%), and so does Q8_0's nine words a
// chunk (373 / 373 / 364 -> 376 / 383 / 386). Q4_0 lost once (514 / 522 -> 506 / 520)
// and gains now (fifteenth session, after the unsigned quants and the folded norms:
// 48 -> 56 registers in the norm's consumer, 608 / 607 -> 614 / 615). The other
// legacy types are untested either way and keep the default. Fewer registers for
// more blocks lose: Q4_K at 56 / 48 registers (9 / 10 blocks) 538 -> 510 / 463
// (kernels/cuda/NOTES.md, fifteenth session).
template <class T, int kMaxTok, int kSplit, int kRowsPerWarp, int kFuse>
__global__ void __launch_bounds__(kWarps * 32)
    matvec_q8_kernel(MatvecGroup g, int64_t n_chunks, const int8_t* __restrict__ xq, const float4* __restrict__ xs,
                     int n_tok, NormIn nin, NormOut nout) {
    matvec_q8_body<T, kMaxTok, kSplit, kRowsPerWarp, kFuse, kWarps>(g, n_chunks, xq, xs, n_tok, nin, nout);
}
template <class T, int kMaxTok, int kSplit, int kRowsPerWarp, int kFuse>
__global__ void __launch_bounds__(kWarps * 32, 1)
    matvec_q8_kernel_free_regs(MatvecGroup g, int64_t n_chunks, const int8_t* __restrict__ xq,
                               const float4* __restrict__ xs, int n_tok, NormIn nin, NormOut nout) {
    matvec_q8_body<T, kMaxTok, kSplit, kRowsPerWarp, kFuse, kWarps>(g, n_chunks, xq, xs, n_tok, nin, nout);
}
// The producer: one block of kNormOutWarps warps per 32 rows, so at most one
// block per SM (1024 threads), which the backend's fold condition relies on.
template <class T, int kSplit>
__global__ void __launch_bounds__(kNormOutWarps * 32, 1)
    matvec_q8_norm_out_kernel(MatvecGroup g, int64_t n_chunks, const int8_t* __restrict__ xq,
                              const float4* __restrict__ xs, NormOut nout) {
    matvec_q8_body<T, 1, kSplit, kSplit, kNormOut, kNormOutWarps>(g, n_chunks, xq, xs, 1, {}, nout);
}
// Two weight types in one launch: blocks before first2 take T1's rows, the rest
// T2's (the group's rows run on across its weights, so each block's rows are of
// one type when the first run's rows are whole blocks). Two rows a warp, no row
// split over warps (rows shorter than kSplitMinChunks chunks). One launch instead
// of two (H200, 7B tg128, KILN_CUDA_MIXED_RUNS 0 / 1 in one run: Q4_K_M 526 / 530 ->
// 534 / 533, Q5_K_M 439 / 439 -> 446 / 447), though both types' blocks get the larger
// register count of the two (Q6_K's, for Q4_K_M).
template <class T1, class T2>
__global__ void __launch_bounds__(kWarps * 32, 1)
    matvec_q8_two_kernel(MatvecGroup g, int64_t n_chunks, const int8_t* __restrict__ xq,
                         const float4* __restrict__ xs, NormIn nin, unsigned first2) {
    if (blockIdx.x < first2)
        matvec_q8_body<T1, 1, 1, 2, kNormIn, kWarps>(g, n_chunks, xq, xs, 1, nin, {});
    else
        matvec_q8_body<T2, 1, 1, 2, kNormIn, kWarps>(g, n_chunks, xq, xs, 1, nin, {});
}

// Long rows split over two warps keep two rows a warp for Q4_K alone: at one block per
// SM (kFreeRegs) the 7B down projection is then 1024 blocks, one wave, not two (H100
// KILN_CUDA_TRACE: 15.6 -> 10.5 us a layer). Q6_K and Q5_K lose or stay (Q6_K 16.1 ->
// 17.8 us; Q5_K_M tg128 385.8 / 385.5 -> 381.5 / 384.7), Q4_0 and Q8_0 stay.
template <class T>
inline constexpr bool kSplitTwoRows = std::is_same_v<T, Q4_K>;
template <class T>
inline constexpr bool kFreeRegs = std::is_same_v<T, Q4_0> || std::is_same_v<T, Q8_0> || std::is_same_v<T, Q2_K> ||
                                  std::is_same_v<T, Q3_K> || std::is_same_v<T, Q4_K> || std::is_same_v<T, Q5_K> ||
                                  std::is_same_v<T, Q6_K>;

// Float weights with float activations: 8 elements per lane per step when
// rows allow 16-byte loads, single elements otherwise (and for the tail).
template <class T>
__device__ __forceinline__ void load8(const uint8_t* row, int64_t i, float (&v)[8]);
template <>
__device__ __forceinline__ void load8<F32>(const uint8_t* row, int64_t i, float (&v)[8]) {
    const float4* p = reinterpret_cast<const float4*>(reinterpret_cast<const float*>(row) + i);
    const float4 a = p[0], b = p[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
template <>
__device__ __forceinline__ void load8<F16>(const uint8_t* row, int64_t i, float (&v)[8]) {
    halves_to_floats(*reinterpret_cast<const uint4*>(reinterpret_cast<const __half*>(row) + i), v);
}
template <>
__device__ __forceinline__ void load8<BF16>(const uint8_t* row, int64_t i, float (&v)[8]) {
    const uint4 u = *reinterpret_cast<const uint4*>(reinterpret_cast<const __nv_bfloat16*>(row) + i);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        v[2 * k] = __uint_as_float(w[k] << 16);
        v[2 * k + 1] = __uint_as_float(w[k] & 0xFFFF0000u);
    }
}

template <class T, int kMaxTok>
__global__ void __launch_bounds__(kWarps * 32)
    matvec_float_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n_in, int64_t n_out,
                        const float* __restrict__ x, int64_t x_stride, int n_tok, float* __restrict__ y,
                        int64_t y_stride, bool vec) {
    let_next_grid_start();
    {  // the row's first kilobyte into L2: the warp's first pass over an F32 row, two over an F16 one
        const int64_t p = int64_t(blockIdx.x) * kWarps + threadIdx.y;
        if (p < n_out) prefetch_bytes_l2(w + p * row_bytes, min(int64_t(row_bytes), int64_t(1024)), threadIdx.x);
    }
    wait_prior_grid();
    const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.y;
    const int lane = threadIdx.x;
    if (row >= n_out) return;
    const uint8_t* wr = w + row * row_bytes;
    float acc[kMaxTok];
#pragma unroll
    for (int t = 0; t < kMaxTok; ++t) acc[t] = 0.0f;
    int64_t i0 = 0;
    if (vec) {
        const int64_t n8 = n_in / 8;
        for (int64_t g = lane; g < n8; g += 32) {
            float v[8];
            load8<T>(wr, g * 8, v);
#pragma unroll
            for (int t = 0; t < kMaxTok; ++t) {
                if (t >= n_tok) break;
                const float4* xp = reinterpret_cast<const float4*>(x + t * x_stride + g * 8);
                const float4 a = xp[0], b = xp[1];
                acc[t] += v[0] * a.x + v[1] * a.y + v[2] * a.z + v[3] * a.w + v[4] * b.x + v[5] * b.y + v[6] * b.z +
                          v[7] * b.w;
            }
        }
        i0 = n8 * 8;
    }
    for (int64_t i = i0 + lane; i < n_in; i += 32) {
        const float wv = T::at(wr, i);
#pragma unroll
        for (int t = 0; t < kMaxTok; ++t) {
            if (t >= n_tok) break;
            acc[t] += wv * x[t * x_stride + i];
        }
    }
#pragma unroll
    for (int t = 0; t < kMaxTok; ++t) {
        if (t >= n_tok) break;
        const float s = warp_sum(acc[t]);
        if (lane == 0) y[t * y_stride + row] = s;
    }
}

}  // namespace

bool matvec_q8_supported(GgmlType type) {
    bool quant = false;
    dispatch_weight_type(type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        quant = kBlockQuant<T>;
    });
    return quant;
}

void quantize_act_q8(const Act& x, int8_t* xq, float4* xs, cudaStream_t stream) {
    const int64_t n_chunks = x.n_cols / 32;
    const int64_t threads = n_chunks * x.n_rows * 32;
    launch_kernel(quantize_q8_kernel, grid_1d(threads, 256), 256, 0, stream, x.data, x.stride, n_chunks, x.n_rows, xq,
                  xs);
}

namespace {

template <int kFuse>
void launch_matvec_q8(const MatvecGroup& g, GgmlType type, int64_t n_in, const int8_t* xq, const float4* xs,
                      int n_tok, const NormIn& nin, cudaStream_t stream) {
    const NormOut nout{};
    const dim3 block(32, kWarps);
    const int64_t n_chunks = n_in / 32;
    dispatch_weight_type(type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (kBlockQuant<T>) {
            // Every block type reads its rows directly: staging K-quant rows through
            // shared memory (their 144..210-byte blocks are read piecewise) lost once
            // other kernels got faster (H200, 7B Q4_K_M tg128 336 -> 376 direct).
            // The split depends on the row length only, so a weight gives the same bits
            // alone as stacked with others (matmul_n); a row's sum does not depend on
            // the rows beside it in its warp.
            auto launch = [&](auto split, auto rows) {
                constexpr int kSplit = decltype(split)::value, kRows = decltype(rows)::value;
                const dim3 split_grid(grid_1d(g.row0[g.n], kWarps / kSplit * kRows));
                if (n_tok == 1) {
                    if constexpr (kFreeRegs<T>)
                        launch_kernel(matvec_q8_kernel_free_regs<T, 1, kSplit, kRows, kFuse>, split_grid, block, 0,
                                      stream, g, n_chunks, xq, xs, 1, nin, nout);
                    else
                        launch_kernel(matvec_q8_kernel<T, 1, kSplit, kRows, kFuse>, split_grid, block, 0, stream, g,
                                      n_chunks, xq, xs, 1, nin, nout);
                } else if constexpr (kFuse == kPlain) {
                    launch_kernel(matvec_q8_kernel<T, kMatvecMaxTokens, kSplit, kRows, kPlain>, split_grid, block, 0,
                                  stream, g, n_chunks, xq, xs, n_tok, nin, nout);
                }
            };
            auto with_rows = [&](auto split) {
                if (g.row0[g.n] <= kOneRowMaxRows && !(kSplitTwoRows<T> && n_chunks >= kSplitMinChunks))
                    launch(split, std::integral_constant<int, 1>{});
                else
                    launch(split, std::integral_constant<int, 2>{});
            };
            if (n_chunks >= kSplitMinChunks)
                with_rows(std::integral_constant<int, 2>{});
            else
                with_rows(std::integral_constant<int, 1>{});
        }
    });
}

MatvecGroup make_group(const DevWeight* ws, const Act* ys, int n) {
    MatvecGroup g{};
    g.n = n;
    g.row0[0] = 0;
    for (int i = 0; i < g.n; ++i) {
        g.w[i] = static_cast<const uint8_t*>(ws[i].data);
        g.row_bytes[i] = ws[i].row_bytes;
        g.y[i] = ys[i].data;
        g.y_stride[i] = ys[i].stride;
        g.row0[i + 1] = g.row0[i] + ws[i].n_out;
    }
    return g;
}

}  // namespace

void matvec_q8(const DevWeight* ws, const Act* ys, int n, const int8_t* xq, const float4* xs, int n_tok,
               cudaStream_t stream, const NormIn& norm) {
    const MatvecGroup g = make_group(ws, ys, n);
    if (norm.ss)
        launch_matvec_q8<kNormIn>(g, ws[0].type, ws[0].n_in, xq, xs, n_tok, norm, stream);
    else
        launch_matvec_q8<kPlain>(g, ws[0].type, ws[0].n_in, xq, xs, n_tok, {}, stream);
}

namespace {

// The pairs of types llama-quantize's K-quant mixes put in one layer's Q/K and V
// (Q2_K: V Q3_K or Q4_K; Q3_K_M/L: Q4_K or Q5_K; Q4_K_S: Q5_K in the first layers;
// Q4_K_M and Q5_K_M: Q6_K in half the layers): f(tag of T1, tag of T2) for those.
template <class F>
bool with_two_types(GgmlType t1, GgmlType t2, F&& f) {
    using K = GgmlType;
    if (t1 == K::Q2_K && t2 == K::Q3_K) return f(Tag<Q2_K>{}, Tag<Q3_K>{}), true;
    if (t1 == K::Q2_K && t2 == K::Q4_K) return f(Tag<Q2_K>{}, Tag<Q4_K>{}), true;
    if (t1 == K::Q3_K && t2 == K::Q4_K) return f(Tag<Q3_K>{}, Tag<Q4_K>{}), true;
    if (t1 == K::Q3_K && t2 == K::Q5_K) return f(Tag<Q3_K>{}, Tag<Q5_K>{}), true;
    if (t1 == K::Q4_K && t2 == K::Q5_K) return f(Tag<Q4_K>{}, Tag<Q5_K>{}), true;
    if (t1 == K::Q4_K && t2 == K::Q6_K) return f(Tag<Q4_K>{}, Tag<Q6_K>{}), true;
    if (t1 == K::Q5_K && t2 == K::Q6_K) return f(Tag<Q5_K>{}, Tag<Q6_K>{}), true;
    return false;
}

}  // namespace

bool matvec_q8_two(const DevWeight* ws, const Act* ys, int n, const int8_t* xq, const float4* xs,
                   const NormIn& norm, cudaStream_t stream) {
    if (n < 2 || n > kMatvecMaxGroup) return false;
    int n_first = 1;
    while (n_first < n && ws[n_first].type == ws[0].type) ++n_first;
    if (n_first == n) return false;
    const GgmlType t2 = ws[n_first].type;
    int64_t rows = 0;
    for (int i = 0; i < n; ++i) {
        if ((i > n_first && ws[i].type != t2) || ws[i].n_in != ws[0].n_in) return false;
        rows += ws[i].n_out;
    }
    const MatvecGroup g = make_group(ws, ys, n);
    if (g.row0[n_first] % (kWarps * 2) != 0 || rows <= kOneRowMaxRows || ws[0].n_in / 32 >= kSplitMinChunks)
        return false;
    const dim3 block(32, kWarps), grid(grid_1d(rows, kWarps * 2));
    const auto first2 = unsigned(g.row0[n_first] / (kWarps * 2));
    const int64_t n_chunks = ws[0].n_in / 32;
    return with_two_types(ws[0].type, t2, [&](auto t1_tag, auto t2_tag) {
        using T1 = typename decltype(t1_tag)::type;
        using T2 = typename decltype(t2_tag)::type;
        launch_kernel(matvec_q8_two_kernel<T1, T2>, grid, block, 0, stream, g, n_chunks, xq, xs, norm, first2);
    });
}

void matvec_q8_norm_out(const DevWeight& w, const int8_t* xq, const float4* xs, const NormOut& out,
                        cudaStream_t stream) {
    const Act residual{out.x, 1, w.n_out, w.n_out};
    const MatvecGroup g = make_group(&w, &residual, 1);
    const int64_t n_chunks = w.n_in / 32;
    const dim3 block(32, kNormOutWarps), grid(unsigned(w.n_out / 32));
    dispatch_weight_type(w.type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (kBlockQuant<T>) {
            // Long rows split over two warps as in matvec_q8, two rows a warp then.
            if (n_chunks >= kSplitMinChunks)
                launch_kernel(matvec_q8_norm_out_kernel<T, 2>, grid, block, 0, stream, g, n_chunks, xq, xs, out);
            else
                launch_kernel(matvec_q8_norm_out_kernel<T, 1>, grid, block, 0, stream, g, n_chunks, xq, xs, out);
        }
    });
}

void matvec_float(const DevWeight& w, const Act& x, Act y, cudaStream_t stream) {
    const dim3 block(32, kWarps), grid(grid_1d(w.n_out, kWarps));
    const auto* wd = static_cast<const uint8_t*>(w.data);
    // 16-byte loads need rows (and activation rows) that start 16-byte aligned.
    const bool vec = w.n_in % 8 == 0 && x.stride % 4 == 0;
    const int n_tok = int(x.n_rows);
    dispatch_weight_type(w.type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (!kBlockQuant<T>) {
            if (n_tok == 1)
                launch_kernel(matvec_float_kernel<T, 1>, grid, block, 0, stream, wd, w.row_bytes, w.n_in, w.n_out,
                              x.data, x.stride, 1, y.data, y.stride, vec);
            else
                launch_kernel(matvec_float_kernel<T, kMatvecMaxTokens>, grid, block, 0, stream, wd, w.row_bytes, w.n_in,
                              w.n_out, x.data, x.stride, n_tok, y.data, y.stride, vec);
        }
    });
}

}  // namespace kiln::cuda
