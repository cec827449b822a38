// The float tiled matmul's interface and its global-memory side (matmul.comp,
// any device; matmul_cm.glsl is the cooperative-matrix one):
// y[t, o] = sum_i x[t, i] * W[o, i] for a tile of BM output rows
// (o) by BN tokens (t) per workgroup, BK elements of i per step. The grid:
// row tiles over x and y (one dimension holds at most 65535 groups), token
// tiles over z.
#include "dequant.glsl"
#include "dequant4.glsl"

#define BM 64u
#define BN 64u
#define WG 128u

layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };
layout(push_constant) uniform Params {
    uint n_in, n_out, n_tok, w_row_bytes, x_off, x_stride, y_off, y_stride;
} p;

uint row_tile() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

// W[o, i..i+3], zero past n_out and n_in. Quantized rows are whole blocks and
// i is a multiple of 4, so only float rows (n_in any length) have a partial tail.
vec4 load_w4(uint o, uint i) {
    if (o >= p.n_out) return vec4(0.0);
    const uint row = o * p.w_row_bytes;
    if (i + 4u <= p.n_in) return dq4(row + (i / BLOCK_SIZE) * BLOCK_BYTES, i % BLOCK_SIZE);
    vec4 v = vec4(0.0);
    [[unroll]] for (uint c = 0u; c < 4u; ++c)
        if (i + c < p.n_in) v[c] = dq(row + ((i + c) / BLOCK_SIZE) * BLOCK_BYTES, (i + c) % BLOCK_SIZE);
    return v;
}

// x[t, i..i+3], zero past n_tok and n_in.
vec4 load_x4(uint t, uint i) {
    if (t >= p.n_tok) return vec4(0.0);
    const uint b = p.x_off + t * p.x_stride + i;
    if (i + 4u <= p.n_in) return vec4(x[b], x[b + 1u], x[b + 2u], x[b + 3u]);
    vec4 v = vec4(0.0);
    [[unroll]] for (uint c = 0u; c < 4u; ++c)
        if (i + c < p.n_in) v[c] = x[b + c];
    return v;
}
