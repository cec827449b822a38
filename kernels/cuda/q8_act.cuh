#pragma once
// Activations quantized for the dp4a matrix-vector kernel (cuda_ops.h: Q8_1-style,
// per 32 values int8 q and (d, d * sum(q[0..15]), d * sum(q[16..31]))). One
// formula, used by the quantize kernel and by the ops that write their output in
// both forms (so the next matmul need not quantize), keeps the bits identical.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_util.cuh"

namespace kiln::cuda {

__device__ __forceinline__ int q8_round(float v, float amax, float d) {
    return amax == 0.0f ? 0 : __float2int_rn(v / d);
}

// A warp's 32 lanes hold one value each of one 32-value block.
__device__ __forceinline__ void q8_store_warp(float v, int lane, int8_t* q32, float4* s) {
    const float amax = warp_max(fabsf(v));
    const float d = amax / 127.0f;
    const int q = q8_round(v, amax, d);
    q32[lane] = int8_t(q);
    float sum = float(q);  // sums of each 16-lane half
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float sum_hi = __shfl_sync(0xffffffffu, sum, 16);
    if (lane == 0) *s = make_float4(d, d * sum, d * sum_hi, 0.0f);
}

// The same for the block of row t's elements first .. first + 31 (first a
// multiple of 32) of rows of row_len elements, laid out as quantize_act_q8's.
__device__ __forceinline__ void q8_store_block(float v, int lane, int8_t* xq, float4* xs, int64_t row_len, int64_t t,
                                               int64_t first) {
    q8_store_warp(v, lane, xq + t * row_len + first, xs + (t * row_len + first) / 32);
}

// Eight consecutive lanes hold four consecutive values each (one float4) of one
// block; every lane of the warp must call this (lanes past the row pass zeros and
// store nothing).
__device__ __forceinline__ void q8_store_float4(float4 v, int lane, bool store, int8_t* q4, float4* s) {
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.0f;
    const int q0 = q8_round(v.x, amax, d), q1 = q8_round(v.y, amax, d), q2 = q8_round(v.z, amax, d),
              q3 = q8_round(v.w, amax, d);
    int sum = q0 + q1 + q2 + q3;
#pragma unroll
    for (int o = 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const int sum_hi = __shfl_xor_sync(0xffffffffu, sum, 4);
    if (!store) return;
    *reinterpret_cast<uint32_t*>(q4) =
        (uint32_t(q0) & 0xFFu) | ((uint32_t(q1) & 0xFFu) << 8) | ((uint32_t(q2) & 0xFFu) << 16) | (uint32_t(q3) << 24);
    if ((lane & 7) == 0) *s = make_float4(d, d * float(sum), d * float(sum_hi), 0.0f);
}

}  // namespace kiln::cuda
