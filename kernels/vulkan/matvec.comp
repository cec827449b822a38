#version 450
// kiln:per-weight-type
// kiln:subgroup-variant
// y[t, o] = sum_i x[t, i] * W[o, i] for a few tokens (decode: 1..NT), where
// the weights are read once and every byte of them counts. Each workgroup
// takes NROWS output rows; its invocations walk the rows' blocks in parts
// (matvec_parts.glsl), so neighbouring invocations read neighbouring words of
// one row, each part decoded once and used for every token. Activations are
// read as vec4 (their offsets and strides are whole vec4s: the backend checks).
// matmul.comp serves larger batches.
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "dequant.glsl"
#include "matvec_parts.glsl"

#define WG 64u
#define NROWS 2u  // kMatvecRows in vulkan_backend.cpp
#define NT 4u     // kMatvecMaxTokens in vulkan_backend.cpp
layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };
layout(push_constant) uniform Params {
    uint n_in, n_out, n_tok, w_row_bytes, x_off, x_stride, y_off, y_stride;
} p;

shared float red[NROWS * NT][WG];

void main() {
    const uint o0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * NROWS;
    if (o0 >= p.n_out) return;  // uniform across the workgroup
    const uint tid = gl_LocalInvocationID.x;
    // The last workgroup of an odd n_out reads its last row twice and writes it once.
    uint row[NROWS];
    for (uint r = 0u; r < NROWS; ++r) row[r] = min(o0 + r, p.n_out - 1u) * p.w_row_bytes;

    float acc[NROWS][NT];
    for (uint r = 0u; r < NROWS; ++r)
        for (uint t = 0u; t < NT; ++t) acc[r][t] = 0.0;

    const uint n_blocks = p.n_in / MV_BLOCK;
    for (uint u = tid; u < n_blocks * MV_PARTS; u += WG) {
        const uint blk = u / MV_PARTS, pi = u % MV_PARTS;
        vec4 w[NROWS][MV_NV];
        for (uint r = 0u; r < NROWS; ++r) mv_part(row[r] + blk * MV_BLOCK_BYTES, pi, w[r]);
        const uint xe = (p.x_off + blk * MV_BLOCK) / 4u;
        for (uint t = 0u; t < NT; ++t) {
            if (t >= p.n_tok) break;
            const uint xt = xe + t * (p.x_stride / 4u);
            for (uint j = 0u; j < uint(MV_NV); ++j) {
                const vec4 xv = x4[xt + mv_x(pi, j) / 4u];
                for (uint r = 0u; r < NROWS; ++r) acc[r][t] += dot(w[r][j], xv);
            }
        }
    }
#ifdef MV_FLOAT_TAIL
    // Float rows: the last n_in % 8 elements one at a time.
    for (uint i = n_blocks * MV_BLOCK + tid; i < p.n_in; i += WG)
        for (uint r = 0u; r < NROWS; ++r) {
            const float wv = dq(row[r] + i * BLOCK_BYTES, 0u);
            for (uint t = 0u; t < NT; ++t)
                if (t < p.n_tok) acc[r][t] += wv * x[p.x_off + t * p.x_stride + i];
        }
#endif

    // Sum each (row, token) over the workgroup; invocation r * NT + t writes it.
#ifdef USE_SUBGROUP
    for (uint r = 0u; r < NROWS; ++r)
        for (uint t = 0u; t < NT; ++t) {
            const float s = subgroupAdd(acc[r][t]);
            if (subgroupElect()) red[r * NT + t][gl_SubgroupID] = s;
        }
    barrier();
    const uint n_partial = gl_NumSubgroups;
#else
    for (uint r = 0u; r < NROWS; ++r)
        for (uint t = 0u; t < NT; ++t) red[r * NT + t][tid] = acc[r][t];
    barrier();
    for (uint s = WG / 2u; s > 1u; s >>= 1) {
        if (tid < s)
            for (uint k = 0u; k < NROWS * NT; ++k) red[k][tid] += red[k][tid + s];
        barrier();
    }
    const uint n_partial = 2u;
#endif
    if (tid < NROWS * NT) {
        const uint r = tid / NT, t = tid % NT;
        float s = 0.0;
        for (uint g = 0u; g < n_partial; ++g) s += red[tid][g];
        if (t < p.n_tok && o0 + r < p.n_out) y[p.y_off + t * p.y_stride + o0 + r] = s;
    }
}
