#version 450
// out = silu(gate) * up for decode rows that feed the down projection's
// integer-dot matvec, written also as q8 blocks (q8_act.glsl), which saves the
// matvec its quantize_q8 dispatch. One invocation per (32-element block, token);
// n_cols % 32 == 0. Rows move as vec4s where their offsets allow
// (vec4_rows.glsl), every load issued before any store. out may alias gate:
// each invocation reads its elements before it writes them and touches no others.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "q8_act.glsl"
#include "swiglu.glsl"
#include "vec4_rows.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer GateBuf { float gate[]; };
layout(std430, binding = 1) readonly buffer GateBuf4 { vec4 gate4[]; };
layout(std430, binding = 2) readonly buffer UpBuf { float up[]; };
layout(std430, binding = 2) readonly buffer UpBuf4 { vec4 up4[]; };
layout(std430, binding = 4) writeonly buffer OutBuf { float outv[]; };
layout(std430, binding = 4) writeonly buffer OutBuf4 { vec4 outv4[]; };
layout(push_constant) uniform Params {
    uint n_cols, g_off, g_stride, u_off, u_stride, o_off, o_stride, q_stride;
} p;
DEFINE_LOAD4(gate_load4, gate, gate4)
DEFINE_LOAD4(up_load4, up, up4)
DEFINE_STORE4(out_store4, outv, outv4)

void main() {
    const uint blk = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (blk >= p.n_cols / 32u) return;
    const uint g0 = p.g_off + t * p.g_stride, u0 = p.u_off + t * p.u_stride, o0 = p.o_off + t * p.o_stride;
    const bool vec = ((p.g_off | p.g_stride | p.u_off | p.u_stride | p.o_off | p.o_stride) & 3u) == 0u;
    vec4 g[8], u[8];
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        g[k] = gate_load4(g0, blk * 32u + 4u * k, p.n_cols, vec);
        u[k] = up_load4(u0, blk * 32u + 4u * k, p.n_cols, vec);
    }
    vec4 v[8];
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        [[unroll]] for (uint c = 0u; c < 4u; ++c) v[k][c] = silu_mul(g[k][c], u[k][c]);
        out_store4(o0, blk * 32u + 4u * k, p.n_cols, vec, v[k]);
    }
    q8_store_block(t * p.q_stride, p.n_cols, blk, v);
}
