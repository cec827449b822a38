// The prompt-processing path: y = x · W^T for many tokens on the tensor cores.
// A block computes a 64 (outputs) x 64 (tokens) tile of y: per 64-wide step of
// the dot-product dimension it dequantizes 64 weight rows' chunks to F16 in
// shared memory, converts the tokens' activations to F16 beside them, and four
// warps each multiply a 32x32 sub-tile with 16x16x16 wmma (F32 accumulators).
#include <mma.h>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/quant_chunk.cuh"

namespace kiln::cuda {

namespace {

using namespace nvcuda;

constexpr int kBM = 64, kBN = 64, kBK = 64;
constexpr int kPad = 8;      // halves of row padding against bank conflicts (keeps 32-byte fragment alignment)
constexpr int kThreads = 128;

struct MmaSmem {
    union {
        struct {
            __half w[kBM][kBK + kPad];  // (outputs, k)
            __half x[kBN][kBK + kPad];  // (tokens, k)
        } in;
        float c[kBN][kBM + 4];          // (tokens, outputs): the tile of y, staged for coalesced stores
    };
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    matmul_mma_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n_in, int64_t n_out,
                      const float* __restrict__ x, int64_t x_stride, int64_t n_tok, float* __restrict__ y,
                      int64_t y_stride) {
    __shared__ __align__(128) MmaSmem sm;
    const int tid = threadIdx.x, warp = tid >> 5;
    const int64_t o0 = int64_t(blockIdx.x) * kBM, t0 = int64_t(blockIdx.y) * kBN;
    const int wm = warp & 1, wn = warp >> 1;  // this warp's 32x32 sub-tile

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    // Weight tile: thread -> (row tid / 2, chunk tid % 2) of the 64 x 64 step.
    const int wr = tid >> 1, wc = tid & 1;
    const int64_t o = o0 + wr;
    const uint8_t* wrow = w + (o < n_out ? o : 0) * row_bytes;

    for (int64_t k0 = 0; k0 < n_in; k0 += kBK) {
        {
            float v[32];
            const int64_t c = k0 / 32 + wc;
            if (o < n_out && c * 32 < n_in) {
                Dequant<T>::run(wrow, c, n_in, v);
            } else {
#pragma unroll
                for (int j = 0; j < 32; ++j) v[j] = 0.0f;
            }
            __half2* dst = reinterpret_cast<__half2*>(&sm.in.w[wr][wc * 32]);
#pragma unroll
            for (int j = 0; j < 16; ++j) dst[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
        }
        // Activation tile: 64 tokens x 64 values, consecutive threads along k.
#pragma unroll 4
        for (int idx = tid; idx < kBN * kBK; idx += kThreads) {
            const int tt = idx / kBK, kk = idx % kBK;
            const int64_t t = t0 + tt, k = k0 + kk;
            sm.in.x[tt][kk] = __float2half_rn(t < n_tok && k < n_in ? x[t * x_stride + k] : 0.0f);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &sm.in.w[wm * 32 + i * 16][kk], kBK + kPad);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &sm.in.x[wn * 32 + j * 16][kk], kBK + kPad);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    // Column-major store of the (outputs, tokens) accumulators = row-major (tokens, outputs).
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&sm.c[wn * 32 + j * 16][wm * 32 + i * 16], acc[i][j], kBM + 4, wmma::mem_col_major);
    __syncthreads();
    for (int idx = tid; idx < kBM * kBN; idx += kThreads) {
        const int tt = idx / kBM, oo = idx % kBM;
        const int64_t t = t0 + tt, oc = o0 + oo;
        if (t < n_tok && oc < n_out) y[t * y_stride + oc] = sm.c[tt][oo];
    }
}

}  // namespace

void matmul_mma(const DevWeight& w, const Act& x, Act y, cudaStream_t stream) {
    const dim3 grid(grid_1d(w.n_out, kBM), grid_1d(x.n_rows, kBN));
    const auto* wd = static_cast<const uint8_t*>(w.data);
    dispatch_weight_type(w.type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        matmul_mma_kernel<T><<<grid, kThreads, 0, stream>>>(wd, w.row_bytes, w.n_in, w.n_out, x.data, x.stride,
                                                            x.n_rows, y.data, y.stride);
    });
}

}  // namespace kiln::cuda
