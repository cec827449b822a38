// The prompt-processing path: y = x · W^T for many tokens on the tensor cores.
// Activations are converted to F16 once per matmul input (padded so tiles need
// no bounds checks). Per 64-wide step of the dot-product dimension a block
// dequantizes its weight rows' chunks to F16 in shared memory beside the
// tokens' F16 values and multiplies them with m16n8k16 mma (F32 accumulators);
// dequantizing a weight element once per 64 or 128 tokens keeps the conversion
// small beside the multiply-adds it feeds.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma_sync.cuh"
#include "kernels/cuda/quant_chunk.cuh"

namespace kiln::cuda {

namespace {

constexpr int kBK = 64;
// Halves per shared row: 144 bytes, so the eight 16-byte rows an ldmatrix reads
// start 4 banks apart and never share one.
constexpr int kLd = kBK + 8;

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

// Up to kMatvecMaxGroup weights of one type and row length multiplied by the same
// activations in one launch (Q, K and V; gate and up): their output tiles side by
// side along the grid's x, so small weights fill the GPU together.
struct MmaGroup {
    const uint8_t* w[kMatvecMaxGroup];
    size_t row_bytes[kMatvecMaxGroup];
    int64_t n_out[kMatvecMaxGroup];
    float* y[kMatvecMaxGroup];
    int64_t y_stride[kMatvecMaxGroup];
    int tile0[kMatvecMaxGroup + 1];  // first x tile of each weight; tile0[n] = all tiles
    int n;
    // Split over k (grid z): block z takes steps [z * split_steps, (z + 1) * split_steps)
    // and writes its sums to partial (z, token, x tile * kBN + output in the tile),
    // which split_reduce_kernel adds up, in order, into y. partial null: no split.
    float* partial;
    int64_t split_steps;
};

// A block computes a kBM (tokens) x kBN (outputs) tile of y with kWarpsM x 2
// warps, each a 64 x kWarpN sub-tile: per 16-wide k step four A fragments (16
// tokens each) and kWarpN / 8 B fragments (8 outputs each) from shared memory by
// ldmatrix feed kWarpN / 2 m16n8k16 mma. Shared memory's bandwidth is what bounds
// this kernel (ldmatrix, the tiles' stores): wide warp tiles read fewer bytes per
// product. The shared tiles are double-buffered: while the warps
// multiply one step, the next step's activations arrive by cp.async and its
// weight chunks are in flight to registers, to be dequantized into the other
// buffer afterwards, so one barrier a step suffices.
template <int kWarpsM, int kWarpN>
struct TileShape {
    static constexpr int kWarpsN = 2;
    static constexpr int kWarps = kWarpsN * kWarpsM, kThreads = 32 * kWarps;
    static constexpr int kBM = 64 * kWarpsM;       // tokens
    static constexpr int kBN = kWarpN * kWarpsN;   // outputs
    static constexpr int kFragsN = kWarpN / 8;
    static constexpr int kChunksPerThread = kBN * (kBK / 32) / kThreads;
    static constexpr int kXCopiesPerThread = kBM * (kBK / 8) / kThreads;  // 16-byte copies
    static constexpr int kStageHalves = (kBM + kBN) * kLd;
    static constexpr size_t kSmemBytes = 2 * size_t(kStageHalves) * sizeof(__half);
};

// Outputs per warp in 128-token tiles. 64 (244-248 registers, two blocks a
// multiprocessor) reads shared memory least, and the K-quants gain by it; the
// other types lose (they keep three blocks of 32-wide warps resident). H200, 7B
// pp512, 32 -> 64: Q4_K_M 13870 / 13901 -> 14783 / 14659, Q4_0 13966 / 13973 ->
// 13369 / 13390.
template <class T>
inline constexpr int kWideWarpN = std::is_same_v<T, Q2_K> || std::is_same_v<T, Q3_K> || std::is_same_v<T, Q4_K> ||
                                          std::is_same_v<T, Q5_K> || std::is_same_v<T, Q6_K>
                                      ? 64
                                      : 32;

template <class T, int kWarpsM, int kWarpN>
__global__ void __launch_bounds__(TileShape<kWarpsM, kWarpN>::kThreads)
    matmul_mma_kernel(MmaGroup g, int64_t n_in, const __half* __restrict__ xh, int64_t x_ld, int64_t n_tok) {
    using S = TileShape<kWarpsM, kWarpN>;
    int gi = 0;
    while (gi + 1 < g.n && int(blockIdx.x) >= g.tile0[gi + 1]) ++gi;
    const uint8_t* __restrict__ w = g.w[gi];
    const size_t row_bytes = g.row_bytes[gi];
    const int64_t n_out = g.n_out[gi];
    float* __restrict__ y = g.y[gi];
    const int64_t y_stride = g.y_stride[gi];
    extern __shared__ __align__(128) __half smem[];
    // Stage s: x tile (kBM tokens x kLd) then w tile (kBN outputs x kLd).
    auto sx = [&](int s) { return smem + s * S::kStageHalves; };
    auto sw = [&](int s) { return smem + s * S::kStageHalves + S::kBM * kLd; };
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t o0 = int64_t(int(blockIdx.x) - g.tile0[gi]) * S::kBN, t0 = int64_t(blockIdx.y) * S::kBM;
    const int wm = warp / S::kWarpsN, wn = warp % S::kWarpsN;  // this warp's 64 (tokens) x 32 (outputs) sub-tile

    // Weight chunks: thread -> (row ci / 2, half ci % 2) of the kBN x 64 step; rows past
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
    auto load_w = [&](int64_t k0) {
#pragma unroll
        for (int i = 0; i < S::kChunksPerThread; ++i) {
            const int ci = tid + i * S::kThreads;
            const int64_t c = k0 / 32 + (ci & 1);
            wreg[i].load(wrow[i], c, n_in, wvalid_row[i] && c * 32 < n_in);
        }
    };
    auto store_w = [&](int s) {
#pragma unroll
        for (int i = 0; i < S::kChunksPerThread; ++i) {
            const int ci = tid + i * S::kThreads;
            uint4 h[4];
            wreg[i].to_half(h);
            uint4* dst = reinterpret_cast<uint4*>(sw(s) + (ci >> 1) * kLd + (ci & 1) * 32);
#pragma unroll
            for (int k = 0; k < 4; ++k) dst[k] = h[k];
        }
    };
    // Activations (padded: no bounds): 16-byte pieces, consecutive threads along k.
    const __half* xtile = xh + t0 * x_ld;
    auto copy_x = [&](int64_t k0, int s) {
#pragma unroll
        for (int i = 0; i < S::kXCopiesPerThread; ++i) {
            const int li = tid + i * S::kThreads;
            const int tt = li / (kBK / 8), kk = (li % (kBK / 8)) * 8;
            cp_async16(sx(s) + tt * kLd + kk, xtile + tt * x_ld + k0 + kk);
        }
        cp_async_commit();
    };

    float acc[4][S::kFragsN][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < S::kFragsN; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    let_next_grid_start();
    load_w(int64_t(blockIdx.z) * g.split_steps * kBK);  // weights are constant: their first loads may precede the wait
    wait_prior_grid();
    copy_x(int64_t(blockIdx.z) * g.split_steps * kBK, 0);
    store_w(0);
    const int64_t step0 = int64_t(blockIdx.z) * g.split_steps;
    const int64_t n_steps = min((n_in + kBK - 1) / kBK - step0, g.split_steps);
    for (int64_t step = 0; step < n_steps; ++step) {
        const int cur = int(step & 1);
        cp_async_wait_all();
        __syncthreads();  // stage cur complete; every warp is done with the other stage
        const bool more = step + 1 < n_steps;
        if (more) {
            copy_x((step0 + step + 1) * kBK, cur ^ 1);
            load_w((step0 + step + 1) * kBK);
        }
        const __half* xs = sx(cur) + (wm * 64) * kLd;
        const __half* ws = sw(cur) + (wn * kWarpN) * kLd;
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            uint32_t a[4][4], b[S::kFragsN][2];
#pragma unroll
            for (int i = 0; i < 4; ++i) ldmatrix_x4(a[i], xs + (i * 16 + (lane & 15)) * kLd + kk + (lane >> 4) * 8);
#pragma unroll
            for (int j = 0; j < S::kFragsN / 2; ++j) {
                uint32_t r[4];
                ldmatrix_x4(r, ws + (j * 16 + (lane & 7) + (lane >> 4) * 8) * kLd + kk + ((lane >> 3) & 1) * 8);
                b[2 * j][0] = r[0];
                b[2 * j][1] = r[1];
                b[2 * j + 1][0] = r[2];
                b[2 * j + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < S::kFragsN; ++j) mma_f16_m16n8k16(acc[i][j], a[i], b[j][0], b[j][1]);
        }
        if (more) store_w(cur ^ 1);
    }
    // Each thread holds, per fragment, two outputs side by side for two tokens: to a
    // split's partial sums (every column of the tile) or to y (outputs past n_out dropped).
    const int64_t part_ld = int64_t(g.tile0[g.n]) * S::kBN;
    float* part = g.partial ? g.partial + int64_t(blockIdx.z) * n_tok * part_ld + int64_t(blockIdx.x) * S::kBN : nullptr;
    const bool pairs = (y_stride & 1) == 0 && (reinterpret_cast<uintptr_t>(y) & 7) == 0;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < S::kFragsN; ++j)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int64_t t = t0 + wm * 64 + i * 16 + (lane >> 2) + 8 * h;
                const int c = wn * kWarpN + j * 8 + 2 * (lane & 3);  // column in the tile
                if (t >= n_tok) continue;
                const float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
                if (part) {
                    *reinterpret_cast<float2*>(part + t * part_ld + c) = make_float2(v0, v1);
                    continue;
                }
                const int64_t o = o0 + c;
                float* dst = y + t * y_stride + o;
                if (pairs && o + 1 < n_out) {
                    *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
                } else {
                    if (o < n_out) dst[0] = v0;
                    if (o + 1 < n_out) dst[1] = v1;
                }
            }
}

// y = the sum of the splits' partials, in split order (the same bits every run).
__global__ void split_reduce_kernel(MmaGroup g, int64_t n_tok, int n_split, int bn) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t ld = int64_t(g.tile0[g.n]) * bn;
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_tok * ld) return;
    const int64_t t = i / ld, c = i % ld;
    const int tile = int(c / bn);
    int gi = 0;
    while (gi + 1 < g.n && tile >= g.tile0[gi + 1]) ++gi;
    const int64_t o = c - int64_t(g.tile0[gi]) * bn;
    if (o >= g.n_out[gi]) return;
    float sum = 0.0f;
    for (int z = 0; z < n_split; ++z) sum += g.partial[(int64_t(z) * n_tok + t) * ld + c];
    g.y[gi][t * g.y_stride[gi] + o] = sum;
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

namespace {

// f(Tag<T>, kWarpsM, kWarpN as integral constants): the tile shape a product of
// this weight type takes. Tiles of 128 tokens halve the weight conversions; 64
// only pay for few tokens.
template <class F>
void with_tile_shape(GgmlType type, bool wide, F&& f) {
    dispatch_weight_type(type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if (wide)
            f(tag, std::integral_constant<int, 2>{}, std::integral_constant<int, kWideWarpN<T>>{});
        else
            f(tag, std::integral_constant<int, 1>{}, std::integral_constant<int, 32>{});
    });
}

}  // namespace

MmaPlan plan_matmul_mma(const DevWeight* ws, int n, int64_t n_tok, int n_sm) {
    MmaPlan p{n_tok > TileShape<1, 32>::kBM, 0, 0, 1, 0};
    with_tile_shape(ws[0].type, p.wide, [&](auto tag, auto warps_m, auto warp_n) {
        using T = typename decltype(tag)::type;
        constexpr int kWarpsM = decltype(warps_m)::value, kWarpN = decltype(warp_n)::value;
        using S = TileShape<kWarpsM, kWarpN>;
        constexpr auto kernel = matmul_mma_kernel<T, kWarpsM, kWarpN>;
        allow_dynamic_smem<kernel>(S::kSmemBytes);
        p.bn = S::kBN;
        for (int i = 0; i < n; ++i) p.tiles += int(grid_1d(ws[i].n_out, S::kBN));
        const int64_t n_steps = (ws[0].n_in + kBK - 1) / kBK;
        const int64_t blocks = int64_t(p.tiles) * grid_1d(n_tok, S::kBM);
        // As many splits as the resident blocks take, each of at least 4 steps.
        const int64_t resident = int64_t(blocks_per_sm<kernel>(S::kThreads, S::kSmemBytes)) * n_sm;
        const int64_t fit = resident / std::max<int64_t>(blocks, 1);
        p.n_split = int(std::clamp<int64_t>(std::min(fit, n_steps / 4), 1, 16));
        p.split_steps = (n_steps + p.n_split - 1) / p.n_split;
        p.n_split = int((n_steps + p.split_steps - 1) / p.split_steps);  // no empty split
    });
    return p;
}

void matmul_mma(const MmaPlan& p, const DevWeight* ws, const Act* ys, int n, const __half* xh, int64_t n_tok,
                float* scratch, cudaStream_t stream) {
    const MmaActShape s = mma_act_shape(n_tok, ws[0].n_in);
    with_tile_shape(ws[0].type, p.wide, [&](auto tag, auto warps_m, auto warp_n) {
        using T = typename decltype(tag)::type;
        constexpr int kWarpsM = decltype(warps_m)::value, kWarpN = decltype(warp_n)::value;
        using S = TileShape<kWarpsM, kWarpN>;
        MmaGroup g{};
        g.n = n;
        for (int i = 0; i < n; ++i) {
            g.w[i] = static_cast<const uint8_t*>(ws[i].data);
            g.row_bytes[i] = ws[i].row_bytes;
            g.n_out[i] = ws[i].n_out;
            g.y[i] = ys[i].data;
            g.y_stride[i] = ys[i].stride;
            g.tile0[i + 1] = g.tile0[i] + int(grid_1d(ws[i].n_out, S::kBN));
        }
        g.partial = p.n_split > 1 ? scratch : nullptr;
        g.split_steps = p.split_steps;
        const dim3 grid(unsigned(g.tile0[n]), grid_1d(n_tok, S::kBM), unsigned(p.n_split));
        launch_kernel(matmul_mma_kernel<T, kWarpsM, kWarpN>, grid, S::kThreads, S::kSmemBytes, stream, g, ws[0].n_in,
                      xh, s.ld, n_tok);
        if (p.n_split > 1)
            launch_kernel(split_reduce_kernel, grid_1d(n_tok * g.tile0[n] * S::kBN, 256), 256, 0, stream, g, n_tok,
                          p.n_split, S::kBN);
    });
}

}  // namespace kiln::cuda
