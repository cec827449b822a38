// Prompt-batch attention on tensor cores, for F16 caches with head_dim 64 or
// 128 (the common models; the rest take the float tiled kernel in
// attention.cu). A block takes 64 queries of one head; each of its four warps
// owns 16 of them and walks the cells in tiles of 64 shared by the block:
//   scores S (16 x 64) = Q K^T  with 16x16x16 wmma (F16 in, F32 sums),
//   online softmax on S in F32 (two lanes per query row), P rounded to F16,
//   O (16 x head_dim, F32 in shared memory) = O * corr + P V  with wmma.
// Q is rounded to F16 after the 1/sqrt(d) scale, as llama.cpp's flash
// attention does: the results differ from the float kernels by ~1e-3.
// O stays in shared memory rather than in accumulator fragments because the
// per-row rescale needs to know which row an element is, which wmma hides.
#include <cuda_fp16.h>
#include <mma.h>

#include <cstdint>

#include "kernels/cuda/attention_mask.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"

namespace kiln::cuda {

namespace {

using namespace nvcuda;

constexpr int kQ = 64, kC = 64, kWarps = 4, kThreads = 32 * kWarps, kRows = kQ / kWarps;

template <int kD>
struct MmaSmem {
    // Strides in elements: rows of 16-byte multiples (wmma's ld rule) whose
    // starts spread over the banks.
    static constexpr int kKs = kD + 8;   // halves per K/V/Q row
    static constexpr int kSs = kC + 4;   // floats per score row
    static constexpr int kPs = kC + 8;   // halves per P row
    static constexpr int kOs = kD + 4;   // floats per O row
    static constexpr size_t kK = size_t(kC) * kKs * 2, kS = size_t(kQ) * kSs * 4, kP = size_t(kQ) * kPs * 2,
                            kO = size_t(kQ) * kOs * 4;
    static_assert(size_t(kQ) * kKs * 2 <= kO, "Q is staged in O's space");
    static constexpr size_t kBytes = 2 * kK + kS + kP + kO;
};

// Rows c0..c0+kC of the cache (this head's kD halves) into dst, zeros past n_scan
// (a masked cell's V still meets a zero weight: it must not be NaN).
template <int kD>
__device__ __forceinline__ void load_tile(__half* dst, const __half* src, const AttentionArgs& a, int c0,
                                          int64_t kv_off) {
    constexpr int kChunks = kD / 8;  // 16-byte chunks per row
    for (int i = threadIdx.x; i < kC * kChunks; i += kThreads) {
        const int cc = i / kChunks, ch = i % kChunks, c = c0 + cc;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (c < a.n_scan) v = *reinterpret_cast<const uint4*>(src + int64_t(c) * a.n_kv_dim + kv_off + 8 * ch);
        *reinterpret_cast<uint4*>(dst + cc * MmaSmem<kD>::kKs + 8 * ch) = v;
    }
}

template <int kD>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(AttentionArgs a) {
    let_next_grid_start();
    wait_prior_grid();
    using S = MmaSmem<kD>;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    __half* sK = reinterpret_cast<__half*>(smem_raw);
    __half* sV = reinterpret_cast<__half*>(smem_raw + S::kK);
    float* sS = reinterpret_cast<float*>(smem_raw + 2 * S::kK);
    __half* sP = reinterpret_cast<__half*>(smem_raw + 2 * S::kK + S::kS);
    float* sO = reinterpret_cast<float*>(smem_raw + 2 * S::kK + S::kS + S::kP);
    __shared__ float s_m[kQ], s_l[kQ], s_corr[kQ];
    __shared__ BatchMask<kQ, kC> mask;

    const int h = blockIdx.x;
    const int64_t t0 = int64_t(blockIdx.y) * kQ;
    const int nq = int(min(int64_t(kQ), a.q.n_rows - t0));
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t kv_off = int64_t(h / a.group) * kD;
    const __half* K = static_cast<const __half*>(a.k);
    const __half* V = static_cast<const __half*>(a.v);

    // Q, scaled and rounded to F16, staged where O will live.
    __half* sQ = reinterpret_cast<__half*>(sO);
    for (int i = tid; i < kQ * kD; i += kThreads) {
        const int qi = i / kD, d = i % kD;
        sQ[qi * S::kKs + d] =
            __float2half(qi < nq ? a.q.data[(t0 + qi) * a.q.stride + int64_t(h) * kD + d] * a.scale : 0.0f);
    }
    if (tid < kQ) {
        s_m[tid] = -INFINITY;
        s_l[tid] = 0.0f;
    }
    mask.load_queries(a, t0, nq);
    __syncthreads();
    mask.reduce_queries();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> qf[kD / 16];
#pragma unroll
    for (int k = 0; k < kD / 16; ++k) wmma::load_matrix_sync(qf[k], sQ + warp * kRows * S::kKs + 16 * k, S::kKs);
    __syncthreads();  // every warp holds its Q: O's space is free
    float* oW = sO + warp * kRows * S::kOs;
    for (int i = lane; i < kRows * S::kOs; i += 32) oW[i] = 0.0f;
    float* sW = sS + warp * kRows * S::kSs;
    __half* pW = sP + warp * kRows * S::kPs;

    // Softmax roles: lane = 2 * row + half; the half's 32 cells are visited
    // rotated by the lane so the pair of rows' reads fall in distinct banks.
    const int r = lane >> 1, half = lane & 1, q = warp * kRows + r;
    for (int c0 = 0; c0 < a.n_scan; c0 += kC) {
        __syncthreads();  // the previous tile's K/V are read; max_pos is written
        if (!__syncthreads_or(mask.load_cells(a, c0))) continue;
        load_tile<kD>(sK, K, a, c0, kv_off);
        load_tile<kD>(sV, V, a, c0, kv_off);
        __syncthreads();

#pragma unroll
        for (int j = 0; j < kC / 16; ++j) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int k = 0; k < kD / 16; ++k) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, sK + 16 * j * S::kKs + 16 * k, S::kKs);
                wmma::mma_sync(acc, qf[k], kf, acc);
            }
            wmma::store_matrix_sync(sW + 16 * j, acc, S::kSs, wmma::mem_row_major);
        }
        __syncwarp();

        const int32_t qpos = mask.pos[q];
        const uint64_t qseq = mask.seq[q];
        float sc[32];
        float mx = -INFINITY;
#pragma unroll
        for (int i = 0; i < 32; ++i) {
            const int cc = 32 * half + ((i + lane) & 31);
            sc[i] = mask.sees(cc, qpos, qseq) ? sW[r * S::kSs + cc] : -INFINITY;
            mx = fmaxf(mx, sc[i]);
        }
        const float m_old = s_m[q];
        const float m_new = fmaxf(m_old, fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1)));
        float sum = 0.0f, corr = 1.0f;
        if (m_new != -INFINITY) corr = expf(m_old - m_new);  // 0 while nothing was visible (m_old = -inf)
#pragma unroll
        for (int i = 0; i < 32; ++i) {
            const int cc = 32 * half + ((i + lane) & 31);
            const float p = m_new != -INFINITY ? expf(sc[i] - m_new) : 0.0f;
            sum += p;
            pW[r * S::kPs + cc] = __float2half(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        __syncwarp();  // every lane has read m_old
        if (half == 0) {
            s_m[q] = m_new;
            s_l[q] = s_l[q] * corr + sum;
            s_corr[q] = corr;
        }
        __syncwarp();

        // O *= corr, row by row, a float4 per lane.
        for (int rr = 0; rr < kRows; ++rr) {
            const float f = s_corr[warp * kRows + rr];
            if (f == 1.0f) continue;  // uniform across the warp
            for (int d = 4 * lane; d < kD; d += 128) {
                float4* o4 = reinterpret_cast<float4*>(oW + rr * S::kOs + d);
                float4 v = *o4;
                v.x *= f;
                v.y *= f;
                v.z *= f;
                v.w *= f;
                *o4 = v;
            }
        }
        __syncwarp();

        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> pf[kC / 16];
#pragma unroll
        for (int k = 0; k < kC / 16; ++k) wmma::load_matrix_sync(pf[k], pW + 16 * k, S::kPs);
#pragma unroll
        for (int n = 0; n < kD / 16; ++n) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, oW + 16 * n, S::kOs, wmma::mem_row_major);
#pragma unroll
            for (int k = 0; k < kC / 16; ++k) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> vf;
                wmma::load_matrix_sync(vf, sV + 16 * k * S::kKs + 16 * n, S::kKs);
                wmma::mma_sync(acc, pf[k], vf, acc);
            }
            wmma::store_matrix_sync(oW + 16 * n, acc, S::kOs, wmma::mem_row_major);
        }
    }
    __syncwarp();
    for (int rr = 0; rr < kRows; ++rr) {
        const int qq = warp * kRows + rr;
        if (qq >= nq) break;
        const float L = s_l[qq];
        float* oh = a.out.data + (t0 + qq) * a.out.stride + int64_t(h) * kD;
        // Nothing visible: a zero output, never NaN.
        for (int d = lane; d < kD; d += 32) oh[d] = L > 0.0f ? oW[rr * S::kOs + d] / L : 0.0f;
    }
}

template <int kD>
bool launch(const AttentionArgs& a, cudaStream_t stream) {
    constexpr size_t bytes = MmaSmem<kD>::kBytes;
    static const bool fits = [] {  // beyond 48 KB needs an opt-in per kernel
        int dev = 0, optin = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
        return bytes <= size_t(optin) && cudaFuncSetAttribute(attention_mma_kernel<kD>,
                                                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                              int(bytes)) == cudaSuccess;
    }();
    if (!fits) return false;
    const dim3 grid(unsigned(a.n_head), grid_1d(a.q.n_rows, kQ));
    launch_kernel(attention_mma_kernel<kD>, grid, kThreads, bytes, stream, a);
    return true;
}

}  // namespace

bool attention_mma(const AttentionArgs& a, cudaStream_t stream) {
    // 16-byte loads of cache rows: every row and head start on a 16-byte boundary.
    const bool aligned = a.n_kv_dim % 8 == 0 && reinterpret_cast<uintptr_t>(a.k) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(a.v) % 16 == 0;
    if (!a.f16 || !aligned || a.n_split != 1) return false;
    if (a.head_dim == 64) return launch<64>(a, stream);
    if (a.head_dim == 128) return launch<128>(a, stream);
    return false;
}

}  // namespace kiln::cuda
