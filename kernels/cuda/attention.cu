// Attention over the KV cache for prompt batches (kAttentionTiledMinTokens
// tokens and more): on tensor cores for F16 caches of head_dim 64/128
// (attention_mma.cu), else the float tiled kernel below, which shares each K/V
// tile among 32 queries. Decode steps and small batches take attention_decode.cu;
// its splits of the cells are merged here (attention_merge_kernel).
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/attention_mask.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/q8_act.cuh"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ float load_kv(const float* p) { return *p; }

// Block per (head, token): merges the n_split partials into the output. Every load
// goes out at the start (each split's max and sum by one thread, this thread's
// dimensions of the first splits' accumulators by all), so the merge waits out one
// memory latency, not one per pass over the splits.
constexpr int kMergeEarly = 8;  // accumulators per dimension loaded before the barrier
__global__ void attention_merge_kernel(AttentionArgs a) {
    __shared__ float s_m[kAttentionMaxSplits], s_l[kAttentionMaxSplits];
    let_next_grid_start();
    wait_prior_grid();
    const int h = blockIdx.x;
    const int64_t t = blockIdx.y;
    const int D = a.head_dim, n = a.n_split;
    const float* part = a.partial + (t * a.n_head + h) * n * (D + 2);
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
        s_m[s] = part[s * (D + 2)];
        s_l[s] = part[s * (D + 2) + 1];
    }
    float early[kMergeEarly];
    const int d_first = threadIdx.x;
#pragma unroll
    for (int s = 0; s < kMergeEarly; ++s) early[s] = s < n && d_first < D ? part[s * (D + 2) + 2 + d_first] : 0.0f;
    __syncthreads();
    float M = -INFINITY;
    for (int s = 0; s < n; ++s) M = fmaxf(M, s_m[s]);
    float L = 0.0f;
    for (int s = 0; s < n; ++s)
        if (s_m[s] != -INFINITY) L += s_l[s] * expf(s_m[s] - M);
    float* oh = a.out.data + t * a.out.stride + int64_t(h) * D;
    const int lane = threadIdx.x & 31;
    for (int d0 = 0; d0 < D; d0 += blockDim.x) {
        const int d = d0 + threadIdx.x;
        float o = 0.0f;
        int s = 0;
        if (d0 == 0) {  // the splits loaded early, from registers (a loop the compiler unrolls)
#pragma unroll
            for (int e = 0; e < kMergeEarly; ++e)
                if (e < n && s_m[e] != -INFINITY) o += early[e] * expf(s_m[e] - M);
            s = kMergeEarly;
        }
        for (; d < D && s < n; ++s) {
            const float m = s_m[s];
            if (m != -INFINITY) o += part[s * (D + 2) + 2 + d] * expf(m - M);
        }
        o = M == -INFINITY ? 0.0f : o / L;  // nothing visible: a zero output, never NaN
        if (d < D) oh[d] = o;
        if (a.xq && d - lane < D)  // whole warps: D % 32 == 0
            q8_store_block(o, lane, a.xq, a.xs, int64_t(a.n_head) * D, t, int64_t(h) * D + d - lane);
    }
}

// Prompt batches: a block per (query head, tile of kQ consecutive tokens) walks
// the cells in tiles of kC. Each K and V tile is read from the cache once for
// the kQ queries (the kernel above reads the cache once per query): scores
// kQ x kC in shared memory, online softmax per query, then the V tile into the
// accumulators. Tiles no query of the block can see are skipped (causal masks
// leave the later half of a prompt's cells out of its early tiles).
// Threads: (tq, tx) = (tid / 16, tid % 16) own queries 4tq..4tq+3 and, for the
// scores, cells tx + 16j; for the output, dimension pairs 2tx + 32k.
constexpr int kTileQ = 32, kTileC = 64, kTileThreads = 128;

template <class KT>
__device__ __forceinline__ float2 pair(const KT* p) { return make_float2(load_kv(p), load_kv(p + 1)); }
template <>
__device__ __forceinline__ float2 pair<__half>(const __half* p) {
    return __half22float2(*reinterpret_cast<const __half2*>(p));
}

template <class KT, int kD>
struct TileSmem {
    static constexpr int kQs = kD + 2;                          // floats per query row (float2-aligned)
    static constexpr int kKs = kD + (sizeof(KT) == 2 ? 2 : 1);  // cache elements per row: conflict-free columns
    static constexpr int kSs = kTileC + 1;
    static constexpr size_t kBytes =
        sizeof(float) * (kTileQ * kQs + kTileQ * kSs) + sizeof(KT) * kTileC * kKs;
};

template <class KT, int kD>
__device__ __forceinline__ void load_kv_tile(KT* dst, const KT* src, const AttentionArgs& a, int c0, int64_t kv_off) {
    using S = TileSmem<KT, kD>;
    constexpr int kPer = kTileC * kD / kTileThreads;
#pragma unroll 16
    for (int k = 0; k < kPer; ++k) {
        const int i = threadIdx.x + k * kTileThreads;
        const int cc = i / kD, d = i % kD;
        const int c = c0 + cc;
        dst[cc * S::kKs + d] = c < a.n_scan && d < a.head_dim ? src[int64_t(c) * a.n_kv_dim + kv_off + d] : KT(0.0f);
    }
}

template <class KT, int kD>
__global__ void __launch_bounds__(kTileThreads) attention_tiled_kernel(AttentionArgs a) {
    let_next_grid_start();
    wait_prior_grid();
    using S = TileSmem<KT, kD>;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* sQ = reinterpret_cast<float*>(smem_raw);
    float* sS = sQ + kTileQ * S::kQs;
    KT* sKV = reinterpret_cast<KT*>(sS + kTileQ * S::kSs);
    __shared__ float s_m[kTileQ], s_l[kTileQ], s_corr[kTileQ];
    __shared__ BatchMask<kTileQ, kTileC> mask;

    const int h = blockIdx.x;
    const int64_t t0 = int64_t(blockIdx.y) * kTileQ;
    const int nq = int(min(int64_t(kTileQ), a.q.n_rows - t0));
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int tq = tid >> 4, tx = tid & 15;
    const int D = a.head_dim;
    const int64_t kv_off = int64_t(h / a.group) * D;
    const KT* K = static_cast<const KT*>(a.k);
    const KT* V = static_cast<const KT*>(a.v);

    for (int i = tid; i < kTileQ * kD; i += kTileThreads) {
        const int qi = i / kD, d = i % kD;
        sQ[qi * S::kQs + d] = qi < nq && d < D ? a.q.data[(t0 + qi) * a.q.stride + int64_t(h) * D + d] * a.scale : 0.0f;
    }
    if (tid < kTileQ) {
        s_m[tid] = -INFINITY;
        s_l[tid] = 0.0f;
    }
    mask.load_queries(a, t0, nq);
    __syncthreads();
    mask.reduce_queries();

    constexpr int kPairs = kD / 32;  // dimension pairs per thread
    float o[4][2 * kPairs];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int e = 0; e < 2 * kPairs; ++e) o[i][e] = 0.0f;

    for (int c0 = 0; c0 < a.n_scan; c0 += kTileC) {
        __syncthreads();  // the previous tile's scores and V rows are read; max_pos is written
        if (!__syncthreads_or(mask.load_cells(a, c0))) continue;
        load_kv_tile<KT, kD>(sKV, K, a, c0, kv_off);
        __syncthreads();

        float sc[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) sc[i][j] = 0.0f;
#pragma unroll 8
        for (int d = 0; d < kD; d += 2) {
            float2 qv[4], kv[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) qv[i] = *reinterpret_cast<const float2*>(&sQ[(4 * tq + i) * S::kQs + d]);
#pragma unroll
            for (int j = 0; j < 4; ++j) kv[j] = pair(&sKV[(tx + 16 * j) * S::kKs + d]);
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) sc[i][j] += qv[i].x * kv[j].x + qv[i].y * kv[j].y;
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int q = 4 * tq + i;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int cc = tx + 16 * j;
                sS[q * S::kSs + cc] = mask.sees(cc, mask.pos[q], mask.seq[q]) ? sc[i][j] : -INFINITY;
            }
        }
        __syncthreads();  // scores complete; the K tile is no longer read

        // Online softmax, a warp per kTileQ / 4 queries, two cells per lane.
#pragma unroll
        for (int r = 0; r < kTileQ / 4; ++r) {
            const int q = warp * (kTileQ / 4) + r;
            float* row = sS + q * S::kSs;
            const float v0 = row[lane], v1 = row[lane + 32];
            const float m_old = s_m[q];
            const float m_new = fmaxf(m_old, warp_max(fmaxf(v0, v1)));
            float p0 = 0.0f, p1 = 0.0f, corr = 1.0f;
            if (m_new != -INFINITY) {
                p0 = expf(v0 - m_new);
                p1 = expf(v1 - m_new);
                corr = expf(m_old - m_new);  // 0 while nothing was visible (m_old = -inf)
            }
            const float sum = warp_sum(p0 + p1);
            row[lane] = p0;
            row[lane + 32] = p1;
            if (lane == 0) {
                s_m[q] = m_new;
                s_l[q] = s_l[q] * corr + sum;
                s_corr[q] = corr;
            }
        }
        load_kv_tile<KT, kD>(sKV, V, a, c0, kv_off);
        __syncthreads();

#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float corr = s_corr[4 * tq + i];
#pragma unroll
            for (int e = 0; e < 2 * kPairs; ++e) o[i][e] *= corr;
        }
#pragma unroll 4
        for (int cc = 0; cc < kTileC; ++cc) {
            float p[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) p[i] = sS[(4 * tq + i) * S::kSs + cc];
#pragma unroll
            for (int k = 0; k < kPairs; ++k) {
                const float2 v = pair(&sKV[cc * S::kKs + 2 * tx + 32 * k]);
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    o[i][2 * k] += p[i] * v.x;
                    o[i][2 * k + 1] += p[i] * v.y;
                }
            }
        }
    }
    __syncthreads();  // s_l of the last tile
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int q = 4 * tq + i;
        if (q >= nq) continue;
        const float L = s_l[q];
        float* oh = a.out.data + (t0 + q) * a.out.stride + int64_t(h) * D;
#pragma unroll
        for (int k = 0; k < kPairs; ++k) {
            const int d = 2 * tx + 32 * k;
            // Nothing visible: a zero output, never NaN.
            if (d < D) oh[d] = L > 0.0f ? o[i][2 * k] / L : 0.0f;
            if (d + 1 < D) oh[d + 1] = L > 0.0f ? o[i][2 * k + 1] / L : 0.0f;
        }
    }
}

// False when the device's shared memory cannot hold the tiles (head_dim 256 with
// an F32 cache needs 107 KB; consumer GPUs give a block at most 99 KB).
template <class KT, int kD>
bool launch_tiled(const AttentionArgs& a, cudaStream_t stream) {
    constexpr size_t bytes = TileSmem<KT, kD>::kBytes;
    if (!allow_dynamic_smem<attention_tiled_kernel<KT, kD>>(bytes)) return false;
    const dim3 grid(unsigned(a.n_head), grid_1d(a.q.n_rows, kTileQ));
    launch_kernel(attention_tiled_kernel<KT, kD>, grid, kTileThreads, bytes, stream, a);
    return true;
}

template <class KT>
bool launch_tiled(const AttentionArgs& a, cudaStream_t stream) {
    if (a.head_dim <= 32) return launch_tiled<KT, 32>(a, stream);
    if (a.head_dim <= 64) return launch_tiled<KT, 64>(a, stream);
    if (a.head_dim <= 128) return launch_tiled<KT, 128>(a, stream);
    return launch_tiled<KT, 256>(a, stream);
}

}  // namespace

void attention(const AttentionArgs& a, cudaStream_t stream) {
    if (a.q.n_rows >= kAttentionTiledMinTokens && a.n_split == 1 &&
        (attention_mma(a, stream) || (a.f16 ? launch_tiled<__half>(a, stream) : launch_tiled<float>(a, stream))))
        return;
    attention_decode(a, stream);
    if (a.n_split > 1)
        launch_kernel(attention_merge_kernel, dim3(unsigned(a.n_head), unsigned(a.q.n_rows)), 128, 0, stream, a);
}

}  // namespace kiln::cuda
