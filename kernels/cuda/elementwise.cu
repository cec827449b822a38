// Row-wise and elementwise ops: embedding lookup, RMSNorm, RoPE, KV store,
// SwiGLU, add, softmax, row gather. Grids put rows on blockIdx.y (at most
// 65535 rows per launch: batches are far smaller) and columns on x.
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/q8_act.cuh"
#include "kernels/cuda/rope_cache.cuh"
#include "kernels/cuda/quant_chunk.cuh"

namespace kiln::cuda {

namespace {

template <class T>
__global__ void get_rows_kernel(const uint8_t* __restrict__ table, size_t row_bytes, int64_t n_cols,
                                const int32_t* __restrict__ ids, int32_t id0, float* __restrict__ out,
                                int64_t out_stride) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // chunk of 32
    if (c * 32 >= n_cols) return;
    const int64_t t = blockIdx.y;
    float v[32];
    Dequant<T>::run(table + int64_t(ids ? ids[t] : id0) * row_bytes, c, n_cols, v);
    float* o = out + t * out_stride + c * 32;
#pragma unroll
    for (int j = 0; j < 32; ++j)
        if (c * 32 + j < n_cols) o[j] = v[j];
}

__global__ void rms_norm_kernel(const float* __restrict__ x, int64_t x_stride, const float* __restrict__ w,
                                int64_t n, float eps, float* out, int64_t out_stride) {
    let_next_grid_start();
    wait_prior_grid();
    __shared__ float scratch[32];
    const float* xr = x + int64_t(blockIdx.x) * x_stride;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss, scratch);
    const float scale = 1.0f / sqrtf(ss / float(n) + eps);
    float* o = out + int64_t(blockIdx.x) * out_stride;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale * w[i];
}

// The common case: rows of whole float4s, held in registers between the sum of
// squares and the scaling, so each thread issues its loads together (the loop
// above waits out one load latency per element).
// With xq set (decode, n a multiple of 32) the output is also written quantized
// for the matrix-vector kernel, which then need not quantize it.
// With res set, x += res first (written back: the residual stream) and the sum is normed.
template <int kVecs>
__global__ void rms_norm_vec_kernel(float* x, int64_t x_stride, const float* res, int64_t res_stride,
                                    const float* __restrict__ w, int64_t n, float eps, float* out, int64_t out_stride,
                                    int8_t* xq, float4* xs) {
    let_next_grid_start();
    __shared__ float scratch[32];
    const int n4 = int(n / 4);
    // The weights are constant: their loads go out before the wait, while the previous kernel ends.
    const float4* w4 = reinterpret_cast<const float4*>(w);
    float4 g[kVecs];
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        g[k] = i < n4 ? w4[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    wait_prior_grid();
    float4* xr = reinterpret_cast<float4*>(x + int64_t(blockIdx.x) * x_stride);
    const float4* rr = reinterpret_cast<const float4*>(res + int64_t(blockIdx.x) * res_stride);
    // Every load before any store: x, res and out may be one buffer for all the compiler
    // knows, so a store between two loads makes the second wait for it (one memory round
    // trip per vector: 8.2 us for a 4096-float row on an H200, ncu).
    float4 v[kVecs], b[kVecs];
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        v[k] = i < n4 ? xr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        b[k] = res && i < n4 ? rr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
        v[k] = make_float4(v[k].x + b[k].x, v[k].y + b[k].y, v[k].z + b[k].z, v[k].w + b[k].w);
        ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    }
    if (res)
#pragma unroll
        for (int k = 0; k < kVecs; ++k) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i < n4) xr[i] = v[k];
        }
    ss = block_sum(ss, scratch);
    const float scale = 1.0f / sqrtf(ss / float(n) + eps);
    float4* o = reinterpret_cast<float4*>(out + int64_t(blockIdx.x) * out_stride);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        const float4 r = make_float4(v[k].x * scale * g[k].x, v[k].y * scale * g[k].y, v[k].z * scale * g[k].z,
                                     v[k].w * scale * g[k].w);
        if (i < n4) o[i] = r;
        if (xq)  // uniform: every lane of the warp takes part in the shuffles
            q8_store_float4(r, threadIdx.x & 31, i < n4, xq + blockIdx.x * n + 4 * int64_t(i),
                            xs + blockIdx.x * (n / 32) + i / 8);
    }
}


// Thread per (head, pair) of one token.
__global__ void rope_kernel(float* x, int64_t x_stride, int n_head, int head_dim, int n_rot, bool neox,
                            const float* __restrict__ cs) {
    let_next_grid_start();
    wait_prior_grid();
    const int half = n_rot / 2;
    const int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_head * half) return;
    const int h = idx / half, i = idx % half;
    const int64_t t = blockIdx.y;
    rope_pair(x + t * x_stride + int64_t(h) * head_dim, i, half, neox, cs[t * n_rot + i], cs[t * n_rot + half + i]);
}

// rope on q and k, k and v into cache cells, for one token per blockIdx.y. Threads
// cover, in order: q's rotated pairs, k's rotated pairs, k's unrotated dimensions
// and v's values; rotated k values go to the cache as they are computed.
__global__ void rope_kv_store_kernel(RopeKvArgs a) {
    let_next_grid_start();
    wait_prior_grid();
    const int half = a.n_rot / 2;
    const int n_head_kv = int(a.n_kv_dim / a.head_dim);
    const int nq = a.n_head * half, nk = n_head_kv * half, nk_rest = n_head_kv * (a.head_dim - a.n_rot);
    const int64_t t = blockIdx.y;
    const float* cs = a.cs + t * a.n_rot;
    const int64_t row = int64_t(a.cells[t]) * a.n_kv_dim;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx < nq) {
        const int h = idx / half, i = idx % half;
        rope_pair(a.q + t * a.q_stride + int64_t(h) * a.head_dim, i, half, a.neox, cs[i], cs[half + i]);
        return;
    }
    idx -= nq;
    if (idx < nk) {
        const int h = idx / half, i = idx % half;
        float* kh = a.k + t * a.k_stride + int64_t(h) * a.head_dim;
        const int2 ab = rope_pair(kh, i, half, a.neox, cs[i], cs[half + i]);
        cache_put(a.k_cache, a.f16, row + int64_t(h) * a.head_dim + ab.x, kh[ab.x]);
        cache_put(a.k_cache, a.f16, row + int64_t(h) * a.head_dim + ab.y, kh[ab.y]);
        return;
    }
    idx -= nk;
    if (idx < nk_rest) {
        const int rest = a.head_dim - a.n_rot;
        const int h = idx / rest, d = a.n_rot + idx % rest;
        cache_put(a.k_cache, a.f16, row + int64_t(h) * a.head_dim + d, a.k[t * a.k_stride + int64_t(h) * a.head_dim + d]);
        return;
    }
    idx -= nk_rest;
    if (idx < a.n_kv_dim) cache_put(a.v_cache, a.f16, row + idx, a.v[t * a.v_stride + idx]);
}

__global__ void kv_store_kernel(void* dst, bool f16, int64_t n_kv_dim, const float* __restrict__ src,
                                int64_t src_stride, const int32_t* __restrict__ cells) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_kv_dim) return;
    const int64_t t = blockIdx.y;
    cache_put(dst, f16, int64_t(cells[t]) * n_kv_dim + i, src[t * src_stride + i]);
}

__global__ void swiglu_kernel(const float* g, int64_t g_stride, const float* u, int64_t u_stride, float* o,
                              int64_t o_stride, int64_t n) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int64_t t = blockIdx.y;
    const float gv = g[t * g_stride + i];
    o[t * o_stride + i] = gv / (1.0f + expf(-gv)) * u[t * u_stride + i];
}

// Decode: also writes the output quantized (n a multiple of 32: a warp is one block).
__global__ void swiglu_q8_kernel(const float* g, int64_t g_stride, const float* u, int64_t u_stride, float* o,
                                 int64_t o_stride, int64_t n, int8_t* xq, float4* xs) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;  // whole warps: n is a multiple of 32
    const int64_t t = blockIdx.y;
    const float gv = g[t * g_stride + i];
    const float v = gv / (1.0f + expf(-gv)) * u[t * u_stride + i];
    o[t * o_stride + i] = v;
    q8_store_warp(v, threadIdx.x & 31, xq + t * n + (i & ~int64_t(31)), xs + t * (n / 32) + i / 32);
}

__global__ void add_kernel(const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* o,
                           int64_t o_stride, int64_t n) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int64_t t = blockIdx.y;
    o[t * o_stride + i] = a[t * a_stride + i] + b[t * b_stride + i];
}

__global__ void softmax_kernel(float* x, int64_t stride, int64_t n) {
    let_next_grid_start();
    wait_prior_grid();
    __shared__ float scratch[32];
    float* r = x + int64_t(blockIdx.x) * stride;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, r[i]);
    m = block_max(m, scratch);
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float e = expf(r[i] - m);
        r[i] = e;
        s += e;
    }
    s = block_sum(s, scratch);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) r[i] /= s;
}

__global__ void copy_rows_kernel(const float* __restrict__ src, int64_t src_stride, const int32_t* __restrict__ rows,
                                 float* __restrict__ out, int64_t out_stride, int64_t n) {
    let_next_grid_start();
    wait_prior_grid();
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    out[int64_t(blockIdx.y) * out_stride + i] = src[int64_t(rows[blockIdx.y]) * src_stride + i];
}

constexpr int kThreads = 256;

}  // namespace

void get_rows(const DevWeight& table, const int32_t* ids, int32_t id0, int n_ids, Act out, cudaStream_t stream) {
    const dim3 grid(grid_1d((table.n_in + 31) / 32, 64), unsigned(n_ids));
    const auto* td = static_cast<const uint8_t*>(table.data);
    dispatch_weight_type(table.type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        launch_kernel(get_rows_kernel<T>, grid, 64, 0, stream, td, table.row_bytes, table.n_in, ids, id0, out.data,
                      out.stride);
    });
}

bool rms_norm_can_quantize(int64_t n_cols) { return n_cols % 32 == 0 && n_cols <= 8 * 4 * kThreads; }
bool rms_norm_can_fuse_add(int64_t n_cols) { return n_cols % 4 == 0 && n_cols <= 8 * 4 * kThreads; }

namespace {
// Rows of whole float4s: the register kernel (with an optional residual add).
void rms_norm_vec(const Act& x, const Act* res, const float* weight, float eps, Act out, cudaStream_t stream,
                  int8_t* xq, float4* xs) {
    const float* r = res ? res->data : nullptr;
    const int64_t rs = res ? res->stride : 0;
    // Rows of up to 4096: a thread per float4, the shortest chain of dependent loads
    // (H200, 7B tg128 with 256 threads of four float4s: Q4_0 514 / 522 -> 533 / 531,
    // Q4_K_M 439 / 428 -> 444 / 440).
    // Longer rows (up to 8192: rms_norm_can_fuse_add) take 256 threads of eight.
    if (x.n_cols <= 4 * 1024)
        launch_kernel(rms_norm_vec_kernel<1>, unsigned(x.n_rows), unsigned((x.n_cols / 4 + 31) / 32 * 32), 0, stream,
                      x.data, x.stride, r, rs, weight, x.n_cols, eps, out.data, out.stride, xq, xs);
    else
        launch_kernel(rms_norm_vec_kernel<8>, unsigned(x.n_rows), kThreads, 0, stream, x.data, x.stride, r, rs, weight,
                      x.n_cols, eps, out.data, out.stride, xq, xs);
}
}  // namespace

void add_rms_norm(Act x, const Act& b, const float* weight, float eps, Act out, cudaStream_t stream, int8_t* xq,
                  float4* xs) {
    rms_norm_vec(x, &b, weight, eps, out, stream, xq, xs);
}

void rms_norm(const Act& x, const float* weight, float eps, Act out, cudaStream_t stream, int8_t* xq, float4* xs) {
    // Act rows are 16-byte aligned (cuda_ops.h), weights start allocations.
    if (rms_norm_can_fuse_add(x.n_cols)) {
        rms_norm_vec(x, nullptr, weight, eps, out, stream, xq, xs);
        return;
    }
    launch_kernel(rms_norm_kernel, unsigned(x.n_rows), kThreads, 0, stream, x.data, x.stride, weight, x.n_cols, eps,
                  out.data, out.stride);
}

void rope(Act x, int n_head, int head_dim, int n_rot, bool neox, const float* cs, cudaStream_t stream) {
    const dim3 grid(grid_1d(int64_t(n_head) * (n_rot / 2), 128), unsigned(x.n_rows));
    launch_kernel(rope_kernel, grid, 128, 0, stream, x.data, x.stride, n_head, head_dim, n_rot, neox, cs);
}

void rope_kv_store(const RopeKvArgs& a, int n_tok, cudaStream_t stream) {
    const int64_t n_head_kv = a.n_kv_dim / a.head_dim;
    const int64_t work = int64_t(a.n_head) * (a.n_rot / 2) + n_head_kv * (a.n_rot / 2) +
                         n_head_kv * (a.head_dim - a.n_rot) + a.n_kv_dim;
    const dim3 grid(grid_1d(work, kThreads), unsigned(n_tok));
    launch_kernel(rope_kv_store_kernel, grid, kThreads, 0, stream, a);
}

void kv_store(void* dst, bool f16, int64_t n_kv_dim, const Act& src, const int32_t* cells, cudaStream_t stream) {
    const dim3 grid(grid_1d(n_kv_dim, kThreads), unsigned(src.n_rows));
    launch_kernel(kv_store_kernel, grid, kThreads, 0, stream, dst, f16, n_kv_dim, src.data, src.stride, cells);
}

void swiglu(const Act& gate, const Act& up, Act out, cudaStream_t stream, int8_t* xq, float4* xs) {
    const dim3 grid(grid_1d(gate.n_cols, kThreads), unsigned(gate.n_rows));
    if (xq) {
        launch_kernel(swiglu_q8_kernel, grid, kThreads, 0, stream, gate.data, gate.stride, up.data, up.stride, out.data,
                      out.stride, gate.n_cols, xq, xs);
        return;
    }
    launch_kernel(swiglu_kernel, grid, kThreads, 0, stream, gate.data, gate.stride, up.data, up.stride, out.data,
                  out.stride, gate.n_cols);
}

void add(const Act& a, const Act& b, Act out, cudaStream_t stream) {
    const dim3 grid(grid_1d(a.n_cols, kThreads), unsigned(a.n_rows));
    launch_kernel(add_kernel, grid, kThreads, 0, stream, a.data, a.stride, b.data, b.stride, out.data, out.stride,
                  a.n_cols);
}

void softmax(Act x, cudaStream_t stream) {
    launch_kernel(softmax_kernel, unsigned(x.n_rows), kThreads, 0, stream, x.data, x.stride, x.n_cols);
}

void copy_rows(const Act& src, const int32_t* rows, int n_rows, Act out, cudaStream_t stream) {
    const dim3 grid(grid_1d(src.n_cols, kThreads), unsigned(n_rows));
    launch_kernel(copy_rows_kernel, grid, kThreads, 0, stream, src.data, src.stride, rows, out.data, out.stride,
                  src.n_cols);
}

}  // namespace kiln::cuda
