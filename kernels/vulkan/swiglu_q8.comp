#version 450
// out = silu(gate) * up for decode rows that feed the down projection's
// integer-dot matvec, written also as q8 blocks (q8_act.glsl), which saves the
// matvec its quantize_q8 dispatch. One invocation per (32-element block, token);
// n_cols % 32 == 0. out may alias gate: each invocation reads its elements
// before it writes them and touches no others.
#extension GL_GOOGLE_include_directive : require
#include "q8_act.glsl"
#include "swiglu.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer GateBuf { float gate[]; };
layout(std430, binding = 2) readonly buffer UpBuf { float up[]; };
layout(std430, binding = 4) writeonly buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params {
    uint n_cols, g_off, g_stride, u_off, u_stride, o_off, o_stride, q_stride;
} p;

void main() {
    const uint blk = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (blk >= p.n_cols / 32u) return;
    const uint g0 = p.g_off + t * p.g_stride, u0 = p.u_off + t * p.u_stride, o0 = p.o_off + t * p.o_stride;
    vec4 v[8];
    for (uint k = 0u; k < 8u; ++k)
        for (uint c = 0u; c < 4u; ++c) {
            const uint i = blk * 32u + 4u * k + c;
            v[k][c] = silu_mul(gate[g0 + i], up[u0 + i]);
        }
    for (uint k = 0u; k < 8u; ++k)
        for (uint c = 0u; c < 4u; ++c) outv[o0 + blk * 32u + 4u * k + c] = v[k][c];
    q8_store_block(t * p.q_stride, p.n_cols, blk, v);
}
