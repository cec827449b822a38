// Prompt-batch attention on tensor cores, for F16 caches with head_dim 64 or
// 128 (the common models; the rest take the float tiled kernel in
// attention.cu), in the manner of flash attention 2. A block takes 64 queries
// of one head; each of its four warps owns 16 of them and walks the cells in
// tiles of 64 shared by the block, all in registers:
//   scores S (16 x 64) = Q K^T  with m16n8k16 mma (F16 in, F32 sums),
//   the online softmax on S's accumulator fragments (a row's values sit in one
//   quad of lanes), P rounded to F16 in place as the A fragments of
//   O (16 x head_dim, F32 accumulators) = O * corr + P V.
// The next visible tile's K and V arrive by cp.async while the warps work on
// this one. Q is rounded to F16 after the 1/sqrt(d) scale, as llama.cpp's flash
// attention does: the results differ from the float kernels by ~1e-3.
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/attention_mask.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma_sync.cuh"

namespace kiln::cuda {

namespace {

constexpr int kQ = 64, kC = 64, kWarps = 4, kThreads = 32 * kWarps;
constexpr float kLog2e = 1.4426950408889634f;  // scores in base 2: exp2f is one instruction

template <int kD>
struct FaShape {
    // Halves per K/V/Q row in shared memory: 16 bytes of padding put the eight
    // rows an ldmatrix reads in distinct banks.
    static constexpr int kLd = kD + 8;
    static constexpr int kTile = kC * kLd;                              // halves of one K or V tile
    static constexpr size_t kBytes = 4 * size_t(kTile) * sizeof(__half);  // K and V, two stages
};

using FaMask = BatchMask<kQ, kC, 2>;  // a cell set per stage

// The first tile at or after c0 that a query of the block sees, with its cells in
// set s of the mask and whether every query sees every cell of it; n_scan if
// none. Called by the whole block (barriers).
__device__ __forceinline__ int next_tile(const AttentionArgs& a, int c0, int s, FaMask& m, bool& full) {
    for (; c0 < a.n_scan; c0 += kC) {
        const bool vis = m.load_cells(a, c0, s);
        full = __syncthreads_and(m.all_see_cell(s));
        if (__syncthreads_or(vis)) return c0;
    }
    return a.n_scan;
}

// Cells c0 .. c0 + kC of this head's K or V rows into a tile; zeros past n_scan (a
// masked cell's V still meets a zero weight: it must not be NaN).
template <int kD>
__device__ __forceinline__ void copy_tile(__half* dst, const __half* src, const AttentionArgs& a, int c0,
                                          int64_t kv_off) {
    constexpr int kChunks = kD / 8;  // 16-byte pieces per row
#pragma unroll
    for (int i = threadIdx.x; i < kC * kChunks; i += kThreads) {
        const int cc = i / kChunks, ch = i % kChunks, c = c0 + cc;
        const bool in = c < a.n_scan;
        cp_async16_or_zero(dst + cc * FaShape<kD>::kLd + 8 * ch, src + (in ? int64_t(c) * a.n_kv_dim + kv_off + 8 * ch : 0),
                           in);
    }
}

template <int kD>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(AttentionArgs a) {
    using S = FaShape<kD>;
    constexpr int kLd = S::kLd;
    extern __shared__ __align__(128) __half fa_smem[];
    auto sK = [&](int s) { return fa_smem + (2 * s) * S::kTile; };
    auto sV = [&](int s) { return fa_smem + (2 * s + 1) * S::kTile; };
    __shared__ FaMask mask;

    let_next_grid_start();
    wait_prior_grid();
    const int h = blockIdx.x;
    // The latest queries first: under the causal mask they scan the most cells.
    const int64_t t0 = int64_t(gridDim.y - 1 - blockIdx.y) * kQ;
    const int nq = int(min(int64_t(kQ), a.q.n_rows - t0));
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t kv_off = int64_t(h / a.group) * kD;
    const __half* K = static_cast<const __half*>(a.k);
    const __half* V = static_cast<const __half*>(a.v);

    // Q, scaled (base 2) and rounded to F16, staged where stage 1's K will go.
    __half* sQ = sK(1);
    const float qscale = a.scale * kLog2e;
    for (int i = tid; i < kQ * kD / 4; i += kThreads) {
        const int qi = (4 * i) / kD, d = (4 * i) % kD;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (qi < nq) v = *reinterpret_cast<const float4*>(a.q.data + (t0 + qi) * a.q.stride + int64_t(h) * kD + d);
        const uint2 hv = make_uint2(pack_half2(v.x * qscale, v.y * qscale), pack_half2(v.z * qscale, v.w * qscale));
        *reinterpret_cast<uint2*>(sQ + qi * kLd + d) = hv;
    }
    mask.load_queries(a, t0, nq);
    __syncthreads();
    mask.reduce_queries();
    uint32_t qf[kD / 16][4];
#pragma unroll
    for (int k = 0; k < kD / 16; ++k) ldmatrix_x4(qf[k], sQ + (warp * 16 + (lane & 15)) * kLd + 16 * k + (lane >> 4) * 8);

    // This thread's two query rows of the warp's 16: r and r + 8.
    const int r = warp * 16 + (lane >> 2);
    float o[kD / 8][4];
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[n][e] = 0.0f;
    float m_row[2] = {-INFINITY, -INFINITY}, l_part[2] = {0.0f, 0.0f};  // l: this thread's share of the row sum

    __syncthreads();  // the mask's queries are reduced; every warp holds its Q (stage 1 is free)
    const int32_t qp[2] = {mask.pos[r], mask.pos[r + 8]};
    const uint64_t qs[2] = {mask.seq[r], mask.seq[r + 8]};
    bool full = false;
    int c0 = next_tile(a, 0, 0, mask, full);
    if (c0 < a.n_scan) {
        copy_tile<kD>(sK(0), K, a, c0, kv_off);
        copy_tile<kD>(sV(0), V, a, c0, kv_off);
        cp_async_commit();
    }
    cp_async_wait_all();
    __syncthreads();
    for (int cur = 0; c0 < a.n_scan; cur ^= 1) {
        bool next_full = false;
        const int c1 = next_tile(a, c0 + kC, cur ^ 1, mask, next_full);
        if (c1 < a.n_scan) {
            copy_tile<kD>(sK(cur ^ 1), K, a, c1, kv_off);
            copy_tile<kD>(sV(cur ^ 1), V, a, c1, kv_off);
            cp_async_commit();
        }

        float sc[kC / 8][4];
#pragma unroll
        for (int j = 0; j < kC / 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) sc[j][e] = 0.0f;
        const __half* kt = sK(cur);
#pragma unroll
        for (int k = 0; k < kD / 16; ++k)
#pragma unroll
            for (int jj = 0; jj < kC / 16; ++jj) {
                uint32_t b[4];
                ldmatrix_x4(b, kt + (jj * 16 + (lane & 7) + (lane >> 4) * 8) * kLd + 16 * k + ((lane >> 3) & 1) * 8);
                mma_f16_m16n8k16(sc[2 * jj], qf[k], b[0], b[1]);
                mma_f16_m16n8k16(sc[2 * jj + 1], qf[k], b[2], b[3]);
            }
        if (!full)
#pragma unroll
            for (int j = 0; j < kC / 8; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int cc = j * 8 + 2 * (lane & 3) + (e & 1);
                    if (!mask.sees(cc, qp[e >> 1], qs[e >> 1], cur)) sc[j][e] = -INFINITY;
                }

        // The online softmax: a row's 64 scores lie in the four lanes of a quad.
        float corr[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < kC / 8; ++j) mx = fmaxf(mx, fmaxf(sc[j][2 * i], sc[j][2 * i + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m_row[i], mx);
            // Nothing visible yet (m_new = -inf): nothing to scale, and no inf - inf.
            corr[i] = m_new == -INFINITY ? 1.0f : exp2f(m_row[i] - m_new);
            m_row[i] = m_new;
            l_part[i] *= corr[i];
        }
#pragma unroll
        for (int j = 0; j < kC / 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float mr = m_row[e >> 1];
                const float p = mr == -INFINITY ? 0.0f : exp2f(sc[j][e] - mr);
                l_part[e >> 1] += p;
                sc[j][e] = p;
            }
#pragma unroll
        for (int n = 0; n < kD / 8; ++n) {
            o[n][0] *= corr[0];
            o[n][1] *= corr[0];
            o[n][2] *= corr[1];
            o[n][3] *= corr[1];
        }

        // O += P V: the score fragments of cells 16kk .. 16kk + 15 are P's A fragment.
        const __half* vt = sV(cur);
#pragma unroll
        for (int kk = 0; kk < kC / 16; ++kk) {
            const uint32_t pa[4] = {pack_half2(sc[2 * kk][0], sc[2 * kk][1]), pack_half2(sc[2 * kk][2], sc[2 * kk][3]),
                                    pack_half2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                    pack_half2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
            for (int nn = 0; nn < kD / 16; ++nn) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, vt + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kLd + nn * 16 + (lane >> 4) * 8);
                mma_f16_m16n8k16(o[2 * nn], pa, b[0], b[1]);
                mma_f16_m16n8k16(o[2 * nn + 1], pa, b[2], b[3]);
            }
        }

        cp_async_wait_all();
        __syncthreads();  // the next stage has landed; this one is free
        c0 = c1;
        full = next_full;
    }

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float l = l_part[i];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const int q = r + 8 * i;
        if (q >= nq) continue;
        float* oh = a.out.data + (t0 + q) * a.out.stride + int64_t(h) * kD;
        // Nothing visible: a zero output, never NaN.
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
        for (int n = 0; n < kD / 8; ++n)
            *reinterpret_cast<float2*>(oh + n * 8 + 2 * (lane & 3)) = make_float2(o[n][2 * i] * inv, o[n][2 * i + 1] * inv);
    }
}

template <int kD>
bool launch(const AttentionArgs& a, cudaStream_t stream) {
    constexpr size_t bytes = FaShape<kD>::kBytes;
    if (!allow_dynamic_smem<attention_mma_kernel<kD>>(bytes)) return false;
    const dim3 grid(unsigned(a.n_head), grid_1d(a.q.n_rows, kQ));
    launch_kernel(attention_mma_kernel<kD>, grid, kThreads, bytes, stream, a);
    return true;
}

}  // namespace

bool attention_mma(const AttentionArgs& a, cudaStream_t stream) {
    // 16-byte copies of cache rows and float4 loads of queries: every row and head
    // start on a 16-byte boundary (Acts' rows do).
    const bool aligned = a.n_kv_dim % 8 == 0 && reinterpret_cast<uintptr_t>(a.k) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(a.v) % 16 == 0 && a.q.stride % 4 == 0 && a.out.stride % 2 == 0;
    if (!a.f16 || !aligned || a.n_split != 1) return false;
    if (a.head_dim == 64) return launch<64>(a, stream);
    if (a.head_dim == 128) return launch<128>(a, stream);
    return false;
}

}  // namespace kiln::cuda
