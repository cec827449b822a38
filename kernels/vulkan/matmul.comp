#version 450
// kiln:per-weight-type
// kiln:subgroup-variant
// y[t, o] = sum_i x[t, i] * W[o, i]. One workgroup per output row and tile of
// up to TILE tokens: each weight element is dequantized once per tile, so the
// same shader is the matrix-vector product (decode, one token) and the
// matrix-matrix product (prompt batches).
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "dequant.glsl"

#define WG 128u
#define TILE 8u
layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 2) buffer YBuf { float y[]; };
layout(push_constant) uniform Params {
    uint n_in, n_out, n_tok, w_row_bytes, x_off, x_stride, y_off, y_stride;
} p;

#ifdef USE_SUBGROUP
shared float red[TILE][WG];  // one partial per subgroup
#else
shared float red[TILE][WG];  // one partial per invocation
#endif

void main() {
    const uint o = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (o >= p.n_out) return;  // uniform across the workgroup
    const uint tid = gl_LocalInvocationID.x;
    const uint t0 = gl_WorkGroupID.z * TILE;
    const uint nt = min(TILE, p.n_tok - t0);
    const uint row = o * p.w_row_bytes;
    const uint xb = p.x_off + t0 * p.x_stride;

    float acc[TILE];
    for (uint t = 0u; t < TILE; ++t) acc[t] = 0.0;
    for (uint i = tid; i < p.n_in; i += WG) {
        const float w = dq(row + (i / BLOCK_SIZE) * BLOCK_BYTES, i % BLOCK_SIZE);
        for (uint t = 0u; t < TILE; ++t)
            if (t < nt) acc[t] += w * x[xb + t * p.x_stride + i];
    }

#ifdef USE_SUBGROUP
    for (uint t = 0u; t < TILE; ++t) {
        const float s = subgroupAdd(acc[t]);
        if (subgroupElect()) red[t][gl_SubgroupID] = s;
    }
    barrier();
    if (tid < nt) {
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; ++g) s += red[tid][g];
        y[p.y_off + (t0 + tid) * p.y_stride + o] = s;
    }
#else
    for (uint t = 0u; t < TILE; ++t) red[t][tid] = acc[t];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            for (uint t = 0u; t < TILE; ++t) red[t][tid] += red[t][tid + s];
        barrier();
    }
    if (tid < nt) y[p.y_off + (t0 + tid) * p.y_stride + o] = red[tid][0];
#endif
}
