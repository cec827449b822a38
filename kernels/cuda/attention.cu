// Causal attention over the KV cache in one pass (flash-attention style): a
// block per (query token, query head); its warps take cells round-robin and
// each keeps a running max, a running sum of exp(score - max) and the
// exp-weighted sum of V rows (online softmax), so K and V are read once and
// no score row is stored. The warps' partial results are merged at the end.
// Each lane holds head_dim / 32 dimensions of q and of the accumulator.
#include <cuda_fp16.h>

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
    for (int c = warp; c < a.n_scan; c += kWarps) {
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

template <class KT>
void launch(const AttentionArgs& a, cudaStream_t stream) {
    const dim3 grid(unsigned(a.n_head), unsigned(a.q.n_rows));
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

void attention(const AttentionArgs& a, cudaStream_t stream) {
    if (a.f16)
        launch<__half>(a, stream);
    else
        launch<float>(a, stream);
}

}  // namespace kiln::cuda
