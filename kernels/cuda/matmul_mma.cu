// The prompt-processing path: y = x · W^T for many tokens on the tensor cores.
// Activations are converted to F16 once per matmul input (padded so tiles need
// no bounds checks); a block computes a 128 (outputs) x BN (tokens) tile of y.
// Per 64-wide step of the dot-product dimension the block dequantizes 128
// weight rows' chunks to F16 in shared memory beside the tokens' F16 values,
// and each warp multiplies a 64x32 sub-tile with 16x16x16 wmma (F32
// accumulators). The next step's weight chunks and activations are loaded into
// registers before the current step's products, so global latency overlaps
// tensor-core work; dequantizing a weight element once per BN tokens keeps the
// conversion cost small beside the BN multiply-adds it feeds.
#include <mma.h>

#include <type_traits>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/quant_chunk.cuh"

namespace kiln::cuda {

namespace {

using namespace nvcuda;

constexpr int kBM = 128, kBK = 64;
constexpr int kLd = kBK + 8;  // halves per shared row: 16-byte padding staggers banks, keeps 32-byte alignment

// One 32-element chunk of a weight row in registers, between its global load
// and its conversion to F16 (so the load can be issued a step ahead).
template <class T, bool kQuant = kBlockQuant<T>>
struct ChunkRegs;

template <class T>
struct ChunkRegs<T, true> {
    int q[8];
    float a[2], o[2];
    __device__ __forceinline__ void load(const uint8_t* row, int64_t c, int64_t, bool valid) {
        constexpr int kChunks = T::kBlock / 32;
        const int64_t cc = valid ? c : 0;
        T::chunk(row + (cc / kChunks) * T::kBytes, int(cc % kChunks), q, a, o);
        if (!valid) a[0] = a[1] = o[0] = o[1] = 0.0f;
    }
    // Two quants at a time in half2 arithmetic: the biased byte v + 128 under the
    // exponent of 1024 is the half 1024 + 128 + v, so one subtraction gives v exactly
    // and one fma the weight (a and o rounded to half: 2^-11 relative, below the
    // rounding of the F16 tile itself).
    __device__ __forceinline__ void to_half(uint4 (&h)[4]) const {
        __half2* hw = reinterpret_cast<__half2*>(h);
        const __half2 bias = __float2half2_rn(1152.0f);
        const __half2 a2[2] = {__float2half2_rn(a[0]), __float2half2_rn(a[1])};
        const __half2 o2[2] = {__float2half2_rn(o[0]), __float2half2_rn(o[1])};
#pragma unroll
        for (int i = 0; i < 8; ++i) {  // word i: elements 4i..4i+3, of half i / 4
            const uint32_t x = uint32_t(q[i]) ^ 0x80808080u;
            const uint32_t lo = __byte_perm(x, 0x64646464u, 0x4140), hi = __byte_perm(x, 0x64646464u, 0x4342);
            const __half2 v0 = __hsub2(*reinterpret_cast<const __half2*>(&lo), bias);
            const __half2 v1 = __hsub2(*reinterpret_cast<const __half2*>(&hi), bias);
            hw[2 * i] = __hfma2(v0, a2[i >> 2], o2[i >> 2]);
            hw[2 * i + 1] = __hfma2(v1, a2[i >> 2], o2[i >> 2]);
        }
    }
};

template <class T>
struct ChunkRegs<T, false> {
    float v[32];
    __device__ __forceinline__ void load(const uint8_t* row, int64_t c, int64_t n_in, bool valid) {
        Dequant<T>::run(row, valid ? c : 0, n_in, v);
        if (!valid)
#pragma unroll
            for (int j = 0; j < 32; ++j) v[j] = 0.0f;
    }
    __device__ __forceinline__ void to_half(uint4 (&h)[4]) const {
        uint32_t* hw = reinterpret_cast<uint32_t*>(h);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const __half2 p = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
            hw[j] = *reinterpret_cast<const uint32_t*>(&p);
        }
    }
};

template <int kWarpsN>
struct TileShape {
    static constexpr int kWarps = 2 * kWarpsN, kThreads = 32 * kWarps, kBN = 32 * kWarpsN;
    static constexpr int kChunksPerThread = kBM * (kBK / 32) / kThreads;
    static constexpr int kXLoadsPerThread = kBN * (kBK / 8) / kThreads;  // 16-byte loads
};

template <int kWarpsN>
struct MmaSmem {
    using S = TileShape<kWarpsN>;
    union {
        struct {
            __half w[kBM][kLd];     // (outputs, k)
            __half x[S::kBN][kLd];  // (tokens, k)
        } in;
        float c[S::kWarps][16 * 16];  // one staged accumulator per warp, for guarded stores
    };
};

template <class T, int kWarpsN>
__global__ void __launch_bounds__(TileShape<kWarpsN>::kThreads)
    matmul_mma_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n_in, int64_t n_out,
                      const __half* __restrict__ xh, int64_t x_ld, int64_t n_tok, float* __restrict__ y,
                      int64_t y_stride) {
    let_next_grid_start();
    wait_prior_grid();
    using S = TileShape<kWarpsN>;
    __shared__ __align__(128) MmaSmem<kWarpsN> sm;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t o0 = int64_t(blockIdx.x) * kBM, t0 = int64_t(blockIdx.y) * S::kBN;
    const int wm = warp & 1, wn = warp >> 1;  // this warp's 64 (outputs) x 32 (tokens) sub-tile

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    // Weight chunks: thread -> (row ci / 2, half ci % 2) of the 128 x 64 step; rows past
    // n_out read row 0 and contribute zeros.
    ChunkRegs<T> wreg[S::kChunksPerThread];
    const uint8_t* wrow[S::kChunksPerThread];
    bool wvalid_row[S::kChunksPerThread];
#pragma unroll
    for (int i = 0; i < S::kChunksPerThread; ++i) {
        const int ci = tid + i * S::kThreads;
        const int64_t o = o0 + (ci >> 1);
        wvalid_row[i] = o < n_out;
        wrow[i] = w + (wvalid_row[i] ? o : 0) * row_bytes;
    }
    // Activations: 16-byte pieces, consecutive threads along k.
    uint4 xreg[S::kXLoadsPerThread];
    const __half* xtile = xh + t0 * x_ld;

    auto load_step = [&](int64_t k0) {
#pragma unroll
        for (int i = 0; i < S::kChunksPerThread; ++i) {
            const int ci = tid + i * S::kThreads;
            const int64_t c = k0 / 32 + (ci & 1);
            wreg[i].load(wrow[i], c, n_in, wvalid_row[i] && c * 32 < n_in);
        }
#pragma unroll
        for (int i = 0; i < S::kXLoadsPerThread; ++i) {
            const int li = tid + i * S::kThreads;
            const int tt = li / (kBK / 8), kk = (li % (kBK / 8)) * 8;
            xreg[i] = *reinterpret_cast<const uint4*>(xtile + tt * x_ld + k0 + kk);
        }
    };
    auto store_step = [&]() {
#pragma unroll
        for (int i = 0; i < S::kChunksPerThread; ++i) {
            const int ci = tid + i * S::kThreads;
            uint4 h[4];
            wreg[i].to_half(h);
            uint4* dst = reinterpret_cast<uint4*>(&sm.in.w[ci >> 1][(ci & 1) * 32]);
#pragma unroll
            for (int k = 0; k < 4; ++k) dst[k] = h[k];
        }
#pragma unroll
        for (int i = 0; i < S::kXLoadsPerThread; ++i) {
            const int li = tid + i * S::kThreads;
            const int tt = li / (kBK / 8), kk = (li % (kBK / 8)) * 8;
            *reinterpret_cast<uint4*>(&sm.in.x[tt][kk]) = xreg[i];
        }
    };

    load_step(0);
    for (int64_t k0 = 0; k0 < n_in; k0 += kBK) {
        __syncthreads();  // the previous step's products have read the tiles
        store_step();
        __syncthreads();
        if (k0 + kBK < n_in) load_step(k0 + kBK);
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[4];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
#pragma unroll
            for (int i = 0; i < 4; ++i) wmma::load_matrix_sync(a[i], &sm.in.w[wm * 64 + i * 16][kk], kLd);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &sm.in.x[wn * 32 + j * 16][kk], kLd);
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
    }
    __syncthreads();  // the tiles become the staging area
    float* stage = sm.c[warp];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            // Column-major (outputs, tokens) = row-major (tokens, outputs): 16 outputs per token row.
            wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_col_major);
            __syncwarp();
            const int64_t ob = o0 + wm * 64 + i * 16, tb = t0 + wn * 32 + j * 16;
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                const int idx = lane + 32 * e, tt = idx >> 4, oo = idx & 15;
                if (tb + tt < n_tok && ob + oo < n_out) y[(tb + tt) * y_stride + ob + oo] = stage[idx];
            }
            __syncwarp();
        }
}

__global__ void to_f16_kernel(const float* __restrict__ x, int64_t x_stride, int64_t n_tok, int64_t n_in,
                              __half* __restrict__ xh, int64_t x_ld, int64_t n_tok_pad) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
    const int64_t t = i / x_ld, k = i % x_ld;
    if (t >= n_tok_pad) return;
    uint32_t out[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int64_t k0 = k + 2 * j;
        const float v0 = t < n_tok && k0 < n_in ? x[t * x_stride + k0] : 0.0f;
        const float v1 = t < n_tok && k0 + 1 < n_in ? x[t * x_stride + k0 + 1] : 0.0f;
        const __half2 p = __floats2half2_rn(v0, v1);
        out[j] = *reinterpret_cast<const uint32_t*>(&p);
    }
    *reinterpret_cast<uint4*>(xh + i) = make_uint4(out[0], out[1], out[2], out[3]);
}

}  // namespace

MmaActShape mma_act_shape(int64_t n_tok, int64_t n_in) {
    return {(n_tok + kMmaTokenPad - 1) / kMmaTokenPad * kMmaTokenPad, (n_in + kBK - 1) / kBK * kBK};
}

void convert_act_f16(const Act& x, __half* xh, cudaStream_t stream) {
    const MmaActShape s = mma_act_shape(x.n_rows, x.n_cols);
    const int64_t threads = s.n_tok_pad * s.ld / 8;
    launch_kernel(to_f16_kernel, grid_1d(threads, 256), 256, 0, stream, x.data, x.stride, x.n_rows, x.n_cols, xh, s.ld,
                  s.n_tok_pad);
}

void matmul_mma(const DevWeight& w, const __half* xh, int64_t n_tok, Act y, cudaStream_t stream) {
    const MmaActShape s = mma_act_shape(n_tok, w.n_in);
    const auto* wd = static_cast<const uint8_t*>(w.data);
    // Wide token tiles halve the weight conversions; narrow ones only pay for few tokens
    // (measured on an H200, 7B Q4_0 pp512: 6634 t/s wide, 5714 narrow for 4096-row weights).
    const bool wide = n_tok > TileShape<2>::kBN;
    dispatch_weight_type(w.type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        auto launch = [&](auto warps_n) {
            constexpr int kWarpsN = decltype(warps_n)::value;
            using S = TileShape<kWarpsN>;
            const dim3 grid(grid_1d(w.n_out, kBM), grid_1d(n_tok, S::kBN));
            launch_kernel(matmul_mma_kernel<T, kWarpsN>, grid, S::kThreads, 0, stream, wd, w.row_bytes, w.n_in, w.n_out,
                          xh, s.ld, n_tok, y.data, y.stride);
        };
        if (wide)
            launch(std::integral_constant<int, 4>{});
        else
            launch(std::integral_constant<int, 2>{});
    });
}

}  // namespace kiln::cuda
