// Attention for decode steps and small batches (fewer than kAttentionTiledMinTokens
// tokens): a block of 128 threads per (query token, query head, split of the cells)
// walks its cells in chunks of 32 (flash-decoding). Per chunk:
// - scores: four threads per cell, each reading a quarter of the key row in 16-byte
//   pieces (pieces q, q + 4, ...: the four threads' query reads from shared memory
//   fall on distinct banks) and adding the four partial dot products by shuffles;
// - the chunk's max over the block (one barrier), the softmax weights of its cells
//   into shared memory (a second barrier), the running max, sum and accumulators
//   rescaled (online softmax);
// - values: thread d owns dimension d (and d + 128) and adds the chunk's 32 value
//   rows. Every load of a chunk (keys and values) is issued at its start, so they
//   are in flight together.
// The shared arrays alternate between chunks, so two barriers a chunk suffice.
// Splits spread a long context over the GPU; attention_merge_kernel (attention.cu)
// combines their partials (max, sum, accumulators scaled to that max). A scan of
// two to four chunks is one split whose block has four such groups of 128 threads,
// a chunk each, merged in shared memory: no merge kernel for the first 128 cells.
// For one token the rope of q and k and the store of the new cell can be done
// here too (AttentionArgs::rope), which takes a kernel (rope_kv_store) out of the
// step: each block rotates its q head as it loads it, and the block whose split
// holds the new cell writes that cell's k and v first (with grouped heads several
// blocks write the same bits), so no block reads the cell before it is stored.
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/q8_act.cuh"
#include "kernels/cuda/rope_cache.cuh"

namespace kiln::cuda {

namespace {

constexpr int kThreads = 128, kChunk = 32, kQuads = 4;

// kVec consecutive elements of a cache row as floats: 16 bytes where rows allow it.
template <class KT, int kVec>
struct KvPiece;
template <>
struct KvPiece<__half, 8> {
    __device__ __forceinline__ static void load(const __half* p, float (&v)[8]) {
        halves_to_floats(*reinterpret_cast<const uint4*>(p), v);
    }
};
template <>
struct KvPiece<float, 4> {
    __device__ __forceinline__ static void load(const float* p, float (&v)[4]) {
        const float4 f = *reinterpret_cast<const float4*>(p);
        v[0] = f.x;
        v[1] = f.y;
        v[2] = f.z;
        v[3] = f.w;
    }
};
template <class KT>
struct KvPiece<KT, 1> {
    __device__ __forceinline__ static void load(const KT* p, float (&v)[1]) {
        if constexpr (sizeof(KT) == 2)
            v[0] = __half2float(*p);
        else
            v[0] = *p;
    }
};

// kMaxD: the largest head_dim this instance takes (64, 128 or 256).
// kGroups: groups of kThreads threads in the block, each walking every kGroups-th
// chunk of the split with its own barriers (bar.sync with its id), merged in shared
// memory at the end: a short context's chunks in parallel without the merge kernel.
template <class KT, int kVec, int kMaxD, int kGroups>
__global__ void __launch_bounds__(kThreads * kGroups) attention_decode_kernel(AttentionArgs a) {
    constexpr int kDims = (kMaxD + kThreads - 1) / kThreads;  // value dimensions per thread
    __shared__ __align__(16) float s_q[kGroups][kMaxD];
    __shared__ float s_max[kGroups][2][kThreads / 32];
    __shared__ float s_p[kGroups][2][kChunk];
    let_next_grid_start();
    wait_prior_grid();
    const int h = blockIdx.x, split = blockIdx.z, grp = int(threadIdx.x) / kThreads, tid = int(threadIdx.x) % kThreads,
              lane = tid & 31, warp = tid >> 5;
    auto group_sync = [grp] {
        if constexpr (kGroups == 1)
            __syncthreads();
        else
            asm volatile("bar.sync %0, %1;" ::"r"(grp + 1), "r"(kThreads) : "memory");
    };
    const int64_t t = blockIdx.y;
    const int D = a.head_dim;
    // Splits hold whole chunks.
    const int per = ((a.n_scan + a.n_split - 1) / a.n_split + kChunk - 1) / kChunk * kChunk;
    const int c0 = split * per, c1 = min(a.n_scan, c0 + per);
    const int64_t kv_off = int64_t(h / a.group) * D;
    const float* qh = a.q.data + t * a.q.stride + int64_t(h) * D;
    const bool fused_rope = a.rope.k != nullptr;
    float qv[kDims];  // staged into s_q after the first chunk's loads are issued
#pragma unroll
    for (int k = 0; k < kDims; ++k) {
        const int d = tid + k * kThreads;
        const float raw = d < D ? (fused_rope ? rope_element(qh, d, a.rope.n_rot, a.rope.neox, a.rope.cs) : qh[d]) : 0.0f;
        qv[k] = raw * a.scale;
    }
    const int32_t pos = a.tok_pos[t];
    const uint64_t seq_bit = uint64_t(1) << a.tok_seq[t];
    const KT* K = static_cast<const KT*>(a.k) + kv_off;
    const KT* V = static_cast<const KT*>(a.v) + kv_off;
    // The new cell into the cache by the block that reads it (uniform per block);
    // the barrier makes the block's stores visible to its own loads below.
    if (fused_rope && ((a.rope.cell >= c0 && a.rope.cell < c1) || (split == a.n_split - 1 && a.rope.cell >= c1))) {
        const int64_t at = int64_t(a.rope.cell) * a.n_kv_dim + kv_off;
#pragma unroll
        for (int k = 0; k < kDims; ++k) {
            const int d = tid + k * kThreads;
            if (grp != 0 || d >= D) continue;
            cache_put(const_cast<void*>(a.k), sizeof(KT) == 2, at + d,
                      rope_element(a.rope.k + kv_off, d, a.rope.n_rot, a.rope.neox, a.rope.cs));
            cache_put(const_cast<void*>(a.v), sizeof(KT) == 2, at + d, a.rope.v[kv_off + d]);
        }
        __syncthreads();
    }

    const int cell = tid / kQuads, quad = tid % kQuads, n_vec = D / kVec;
    constexpr int kPieces = (kMaxD / kVec + kQuads - 1) / kQuads;  // key pieces per thread
    float m = -INFINITY, l = 0.0f, acc[kDims];
#pragma unroll
    for (int k = 0; k < kDims; ++k) acc[k] = 0.0f;
    int buf = 0;
    for (int base = c0 + grp * kChunk; base < c1; base += kChunk * kGroups, buf ^= 1) {
        // Every load of the chunk first, the key pieces for the scores and the value
        // elements this thread adds up, so a chunk waits out one memory latency, not
        // one for the keys and more for the values.
        const int c = base + cell;
        const bool in_split = c < c1;
        const KT* kr = K + int64_t(in_split ? c : c0) * a.n_kv_dim;
        float kp[kPieces][kVec];
#pragma unroll
        for (int i = 0; i < kPieces; ++i) {
            const int u = quad + i * kQuads;
            if (u < n_vec) KvPiece<KT, kVec>::load(kr + u * kVec, kp[i]);
        }
        KT vals[kChunk][kDims];
#pragma unroll
        for (int j = 0; j < kChunk; ++j) {
            const int64_t row = min(base + j, c1 - 1);  // past the split: a valid row, weighted 0
#pragma unroll
            for (int k = 0; k < kDims; ++k) vals[j][k] = V[row * a.n_kv_dim + min(tid + k * kThreads, D - 1)];
        }
        const int32_t cp = in_split ? a.cell_pos[c] : -1;
        const bool visible = cp >= 0 && cp <= pos && (a.cell_seqs[c] & seq_bit) != 0;
        if (base == c0 + grp * kChunk) {
#pragma unroll
            for (int k = 0; k < kDims; ++k)
                if (tid + k * kThreads < D) s_q[grp][tid + k * kThreads] = qv[k];
            group_sync();
        }
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < kPieces; ++i) {
            const int u = quad + i * kQuads;
            if (u < n_vec)
#pragma unroll
                for (int j = 0; j < kVec; ++j) s += kp[i][j] * s_q[grp][u * kVec + j];
        }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        s = visible ? s : -INFINITY;
        const float wm = warp_max(s);
        if (lane == 0) s_max[grp][buf][warp] = wm;
        group_sync();
        float cm = s_max[grp][buf][0];
#pragma unroll
        for (int w = 1; w < kThreads / 32; ++w) cm = fmaxf(cm, s_max[grp][buf][w]);
        const float m_new = fmaxf(m, cm);
        if (m_new == -INFINITY) continue;  // nothing visible yet: the same for the whole group
        if (quad == 0) s_p[grp][buf][cell] = visible ? expf(s - m_new) : 0.0f;
        group_sync();
        const float corr = expf(m - m_new);  // 0 while m is -inf
        m = m_new;
#pragma unroll
        for (int k = 0; k < kDims; ++k) acc[k] *= corr;
        float psum = 0.0f;
#pragma unroll
        for (int j = 0; j < kChunk; ++j) {
            const float p = s_p[grp][buf][j];  // 0 past the split's end
            psum += p;
#pragma unroll
            for (int k = 0; k < kDims; ++k) {
                float v[1];
                KvPiece<KT, 1>::load(&vals[j][k], v);
                acc[k] += p != 0.0f ? p * v[0] : 0.0f;  // an unseen cell's row may hold anything
            }
        }
        l = l * corr + psum;
    }
    if constexpr (kGroups > 1) {  // the groups' (max, sum, accumulators) into group 0's
        __shared__ float s_ml[kGroups][2];
        __shared__ float s_acc[kGroups][kMaxD];
        if (tid == 0) {
            s_ml[grp][0] = m;
            s_ml[grp][1] = l;
        }
#pragma unroll
        for (int k = 0; k < kDims; ++k)
            if (tid + k * kThreads < D) s_acc[grp][tid + k * kThreads] = acc[k];
        __syncthreads();
        if (grp != 0) return;
        float mm = s_ml[0][0];
#pragma unroll
        for (int g = 1; g < kGroups; ++g) mm = fmaxf(mm, s_ml[g][0]);
        float f[kGroups];
        l = 0.0f;
#pragma unroll
        for (int g = 0; g < kGroups; ++g) {
            f[g] = s_ml[g][0] == -INFINITY ? 0.0f : expf(s_ml[g][0] - mm);  // a group that saw nothing adds nothing
            l += s_ml[g][1] * f[g];
        }
        m = mm;
#pragma unroll
        for (int k = 0; k < kDims; ++k) {
            const int d = min(tid + k * kThreads, D - 1);
            float v = 0.0f;
#pragma unroll
            for (int g = 0; g < kGroups; ++g) v += s_acc[g][d] * f[g];
            acc[k] = v;
        }
    }

    if (a.n_split > 1) {
        float* part = a.partial + ((t * a.n_head + h) * a.n_split + split) * (D + 2);
        if (tid == 0) {
            part[0] = m;
            part[1] = l;
        }
#pragma unroll
        for (int k = 0; k < kDims; ++k)
            if (tid + k * kThreads < D) part[2 + tid + k * kThreads] = acc[k];
        return;
    }
    float* oh = a.out.data + t * a.out.stride + int64_t(h) * D;
#pragma unroll
    for (int k = 0; k < kDims; ++k) {
        const int d = tid + k * kThreads;
        const float o = l > 0.0f ? acc[k] / l : 0.0f;  // nothing visible: zeros
        if (d < D) oh[d] = o;
        if (a.xq && d - lane < D)  // whole warps: D % 32 == 0
            q8_store_block(o, lane, a.xq, a.xs, int64_t(a.n_head) * D, t, int64_t(h) * D + d - lane);
    }
}

// Up to kGroupChunks chunks (and heads of up to 128 dimensions: larger ones would
// spill at 512 threads) are one block of that many groups, with no merge kernel
// (attention_splits says one split); longer scans take one chunk a block.
constexpr int kGroupChunks = 4, kGroupMaxHeadDim = 128;

template <class KT, int kVec, int kMaxD>
void launch_groups(const AttentionArgs& a, dim3 grid, cudaStream_t stream) {
    if constexpr (kMaxD <= kGroupMaxHeadDim) {
        if (a.n_split == 1 && a.n_scan > kChunk) {
            launch_kernel(attention_decode_kernel<KT, kVec, kMaxD, kGroupChunks>, grid, kThreads * kGroupChunks, 0,
                          stream, a);
            return;
        }
    }
    launch_kernel(attention_decode_kernel<KT, kVec, kMaxD, 1>, grid, kThreads, 0, stream, a);
}

template <class KT, int kVec>
void launch_width(const AttentionArgs& a, dim3 grid, cudaStream_t stream) {
    if (a.head_dim <= 64)
        launch_groups<KT, kVec, 64>(a, grid, stream);
    else if (a.head_dim <= 128)
        launch_groups<KT, kVec, 128>(a, grid, stream);
    else
        launch_groups<KT, kVec, 256>(a, grid, stream);
}

}  // namespace

int attention_splits(int n_tok, int n_head, int head_dim, int n_scan, int n_sm) {
    // A chunk a split: its loads are in flight together, so a second chunk in the same
    // block costs a second memory latency where another block costs none (H200, 7B Q4_0
    // tg128 with two chunks a split: 507-521 t/s, one: 532-533).
    constexpr int kMinCells = kChunk;
    const int blocks = n_tok * n_head;
    int n = (n_scan + kMinCells - 1) / kMinCells;
    if (n <= kGroupChunks && head_dim <= kGroupMaxHeadDim) return 1;  // one block of groups a head (launch_groups)
    n = std::min(n, std::max(1, 8 * n_sm / blocks));  // about one wave of blocks
    return std::max(1, std::min(n, kAttentionMaxSplits));
}

void attention_decode(const AttentionArgs& a, cudaStream_t stream) {
    const dim3 grid(unsigned(a.n_head), unsigned(a.q.n_rows), unsigned(a.n_split));
    if (a.f16) {
        if (a.head_dim % 8 == 0 && a.n_kv_dim % 8 == 0)
            launch_width<__half, 8>(a, grid, stream);
        else
            launch_width<__half, 1>(a, grid, stream);
    } else {
        if (a.head_dim % 4 == 0 && a.n_kv_dim % 4 == 0)
            launch_width<float, 4>(a, grid, stream);
        else
            launch_width<float, 1>(a, grid, stream);
    }
}

}  // namespace kiln::cuda
