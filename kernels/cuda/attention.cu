// Causal attention over the KV cache in one pass (flash-attention style): a
// block per (query token, query head, split of the cells); its warps take the
// split's cells round-robin and
// each keeps a running max, a running sum of exp(score - max) and the
// exp-weighted sum of V rows (online softmax), so K and V are read once and
// no score row is stored. The warps' partial results are merged at the end;
// with several splits (decode: few tokens x heads to fill the GPU) a second
// kernel merges the splits' partials the same way.
// Each lane holds head_dim / 32 dimensions of q and of the accumulator.
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"

namespace kiln::cuda {

namespace {

constexpr int kWarps = 4;

__device__ __forceinline__ float load_kv(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float load_kv(const float* p) { return *p; }

// kDims: dimensions per lane (head_dim <= 32 * kDims).
template <class KT, int kDims>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(AttentionArgs a) {
    __shared__ float s_m[kWarps], s_l[kWarps];
    __shared__ float s_acc[kWarps][32 * kDims];
    const int h = blockIdx.x;
    const int64_t t = blockIdx.y;
    const int split = blockIdx.z;
    const int per = (a.n_scan + a.n_split - 1) / a.n_split;
    const int c0 = split * per, c1 = min(a.n_scan, c0 + per);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int D = a.head_dim;
    const int64_t kv_off = int64_t(h / a.group) * D;
    const float* qh = a.q.data + t * a.q.stride + int64_t(h) * D;
    const KT* K = static_cast<const KT*>(a.k);
    const KT* V = static_cast<const KT*>(a.v);

    float q[kDims], acc[kDims];
#pragma unroll
    for (int i = 0; i < kDims; ++i) {
        const int d = lane + 32 * i;
        q[i] = d < D ? qh[d] : 0.0f;
        acc[i] = 0.0f;
    }
    const int32_t pos = a.tok_pos[t];
    const uint64_t seq_bit = uint64_t(1) << a.tok_seq[t];
    float m = -INFINITY, l = 0.0f;
    for (int c = c0 + warp; c < c1; c += kWarps) {
        const int32_t cp = a.cell_pos[c];
        if (cp < 0 || cp > pos || !(a.cell_seqs[c] & seq_bit)) continue;
        const KT* kr = K + int64_t(c) * a.n_kv_dim + kv_off;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < kDims; ++i) {
            const int d = lane + 32 * i;
            if (d < D) s += q[i] * load_kv(kr + d);
        }
        s = warp_sum(s) * a.scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new);  // 0 on the first visible cell (m = -inf)
        const float p = expf(s - m_new);
        l = l * corr + p;
        const KT* vr = V + int64_t(c) * a.n_kv_dim + kv_off;
#pragma unroll
        for (int i = 0; i < kDims; ++i) {
            const int d = lane + 32 * i;
            acc[i] = acc[i] * corr + (d < D ? p * load_kv(vr + d) : 0.0f);
        }
        m = m_new;
    }
    if (lane == 0) {
        s_m[warp] = m;
        s_l[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < kDims; ++i) s_acc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_m[w]);
    if (a.n_split > 1) {
        // Partial of this split: (max, sum, accumulators scaled to that max).
        float* part = a.partial + ((t * a.n_head + h) * a.n_split + split) * (D + 2);
        float L = 0.0f, f[kWarps];
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            f[w] = s_m[w] == -INFINITY ? 0.0f : expf(s_m[w] - M);
            L += s_l[w] * f[w];
        }
        if (threadIdx.x == 0) {
            part[0] = M;
            part[1] = L;
        }
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            float o = 0.0f;
#pragma unroll
            for (int w = 0; w < kWarps; ++w) o += s_acc[w][d] * f[w];
            part[2 + d] = o;
        }
        return;
    }
    float* oh = a.out.data + t * a.out.stride + int64_t(h) * D;
    if (M == -INFINITY) {  // nothing visible: a zero output, never NaN
        for (int d = threadIdx.x; d < D; d += blockDim.x) oh[d] = 0.0f;
        return;
    }
    float L = 0.0f, f[kWarps];
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
        f[w] = s_m[w] == -INFINITY ? 0.0f : expf(s_m[w] - M);
        L += s_l[w] * f[w];
    }
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) o += s_acc[w][d] * f[w];
        oh[d] = o / L;
    }
}

// Block per (head, token): merges the n_split partials into the output.
__global__ void attention_merge_kernel(AttentionArgs a) {
    const int h = blockIdx.x;
    const int64_t t = blockIdx.y;
    const int D = a.head_dim;
    const float* part = a.partial + (t * a.n_head + h) * a.n_split * (D + 2);
    float M = -INFINITY;
    for (int s = 0; s < a.n_split; ++s) M = fmaxf(M, part[s * (D + 2)]);
    float* oh = a.out.data + t * a.out.stride + int64_t(h) * D;
    if (M == -INFINITY) {  // nothing visible: a zero output, never NaN
        for (int d = threadIdx.x; d < D; d += blockDim.x) oh[d] = 0.0f;
        return;
    }
    float L = 0.0f;
    for (int s = 0; s < a.n_split; ++s) {
        const float m = part[s * (D + 2)];
        if (m != -INFINITY) L += part[s * (D + 2) + 1] * expf(m - M);
    }
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < a.n_split; ++s) {
            const float m = part[s * (D + 2)];
            if (m != -INFINITY) o += part[s * (D + 2) + 2 + d] * expf(m - M);
        }
        oh[d] = o / L;
    }
}

template <class KT>
void launch(const AttentionArgs& a, cudaStream_t stream) {
    const dim3 grid(unsigned(a.n_head), unsigned(a.q.n_rows), unsigned(a.n_split));
    if (a.head_dim <= 32)
        attention_kernel<KT, 1><<<grid, kWarps * 32, 0, stream>>>(a);
    else if (a.head_dim <= 64)
        attention_kernel<KT, 2><<<grid, kWarps * 32, 0, stream>>>(a);
    else if (a.head_dim <= 128)
        attention_kernel<KT, 4><<<grid, kWarps * 32, 0, stream>>>(a);
    else
        attention_kernel<KT, 8><<<grid, kWarps * 32, 0, stream>>>(a);
}

}  // namespace

int attention_splits(int n_tok, int n_head, int n_scan, int n_sm) {
    constexpr int kMinCells = 64;  // below this a split costs more to merge than it saves
    const int blocks = n_tok * n_head;
    int n = (2 * n_sm + blocks - 1) / blocks;
    n = std::min(n, n_scan / kMinCells);
    return std::max(1, std::min(n, 64));
}

void attention(const AttentionArgs& a, cudaStream_t stream) {
    if (a.f16)
        launch<__half>(a, stream);
    else
        launch<float>(a, stream);
    if (a.n_split > 1)
        attention_merge_kernel<<<dim3(unsigned(a.n_head), unsigned(a.q.n_rows)), 128, 0, stream>>>(a);
}

}  // namespace kiln::cuda
