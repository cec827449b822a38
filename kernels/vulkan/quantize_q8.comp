#version 450
// Activations to 8-bit blocks (layout: q8_act.glsl) for the integer-dot matvec,
// for inputs that no fused writer (rms_norm, swiglu_q8) quantized: one
// invocation per (block, token).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "q8_act.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
layout(push_constant) uniform Params {
    uint n_in, n_tok, x_off, x_stride, q_stride;
} p;

void main() {
    const uint blk = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (blk >= p.n_in / 32u) return;
    const uint xb = (p.x_off + t * p.x_stride) / 4u + blk * 8u;
    vec4 v[8];
    [[unroll]] for (uint k = 0u; k < 8u; ++k) v[k] = x4[xb + k];
    q8_store_block(t * p.q_stride, p.n_in, blk, v);
}
