#pragma once
// The rotary embedding's formula and the KV cache's element store, shared by
// rope_kv_store (elementwise.cu) and the decode attention that folds it in
// (attention_decode.cu), so both write the same bits.
#include <cuda_fp16.h>

#include <cstdint>

namespace kiln::cuda {

// The two elements of pair i of a head: (2i, 2i+1), or (i, i + half) for NEOX.
__device__ __forceinline__ int2 rope_pair_dims(int i, int half, bool neox) {
    return neox ? make_int2(i, i + half) : make_int2(2 * i, 2 * i + 1);
}
// The rotation of (x0, x1) by the angle whose cos and sin are c, s.
__device__ __forceinline__ float2 rope_rotate(float x0, float x1, float c, float s) {
    return make_float2(x0 * c - x1 * s, x0 * s + x1 * c);
}

// Rotates pair i of the head at v in place; returns the pair's two indices.
__device__ __forceinline__ int2 rope_pair(float* v, int i, int half, bool neox, float c, float s) {
    const int2 ab = rope_pair_dims(i, half, neox);
    const float2 r = rope_rotate(v[ab.x], v[ab.y], c, s);
    v[ab.x] = r.x;
    v[ab.y] = r.y;
    return ab;
}

// Element d of the head at v after rope (cs: the n_rot/2 cos, then the sin);
// dimensions from n_rot on are not rotated.
__device__ __forceinline__ float rope_element(const float* v, int d, int n_rot, bool neox, const float* cs) {
    if (d >= n_rot) return v[d];
    const int half = n_rot / 2;
    const int i = neox ? d % half : d / 2;
    const int2 ab = rope_pair_dims(i, half, neox);
    const float2 r = rope_rotate(v[ab.x], v[ab.y], cs[i], cs[half + i]);
    return d == ab.x ? r.x : r.y;
}

__device__ __forceinline__ void cache_put(void* dst, bool f16, int64_t at, float v) {
    if (f16)
        static_cast<__half*>(dst)[at] = __float2half_rn(v);
    else
        static_cast<float*>(dst)[at] = v;
}

}  // namespace kiln::cuda
