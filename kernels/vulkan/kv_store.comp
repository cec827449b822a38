#version 450
// Stores rows of src (n_tok, n_kv_dim) into cells[t] of one layer's K or V
// cache, as F16 (two per word; n_kv_dim is even) or F32.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer Src { float src[]; };
layout(std430, binding = 2) readonly buffer Arena { int arena[]; };
layout(std430, binding = 3) writeonly buffer Dst { uint dst[]; };
layout(push_constant) uniform Params {
    uint src_off, src_stride, n_kv_dim, cells_off, f16;
} p;

void main() {
    const uint t = gl_GlobalInvocationID.y;
    const uint cell = uint(arena[p.cells_off + t]);
    const uint s = p.src_off + t * p.src_stride;
    const uint i = gl_GlobalInvocationID.x;
    if (p.f16 != 0u) {
        if (2u * i >= p.n_kv_dim) return;
        dst[(cell * p.n_kv_dim) / 2u + i] =
            f32_to_f16_bits(src[s + 2u * i]) | (f32_to_f16_bits(src[s + 2u * i + 1u]) << 16);
    } else {
        if (i >= p.n_kv_dim) return;
        dst[cell * p.n_kv_dim + i] = floatBitsToUint(src[s + i]);
    }
}
