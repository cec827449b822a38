#version 450
// Rotary embedding in place on x (n_tok, n_head * head_dim). The cos/sin of
// every (token, pair) come from the host (kernels/cpu/ops_ref's rope_cos_sin),
// so both backends rotate by the same angles: per token n_rot/2 cos then n_rot/2 sin.
#extension GL_GOOGLE_include_directive : require
#include "rope.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 1) buffer XBuf { float x[]; };
layout(std430, binding = 2) readonly buffer Arena { float arena[]; };
layout(push_constant) uniform Params {
    uint x_off, x_stride, n_head, head_dim, n_rot, neox, cs_off;
} p;

void main() {
    const uint half_rot = p.n_rot / 2u;
    const uint g = gl_GlobalInvocationID.x;
    if (g >= p.n_head * half_rot) return;
    const uint t = gl_GlobalInvocationID.y;
    const uint h = g / half_rot, i = g % half_rot;
    const uint a = p.neox != 0u ? i : 2u * i;
    const uint b = p.neox != 0u ? i + half_rot : 2u * i + 1u;
    const uint base = p.x_off + t * p.x_stride + h * p.head_dim;
    const float c = arena[p.cs_off + t * p.n_rot + i];
    const float s = arena[p.cs_off + t * p.n_rot + half_rot + i];
    const vec2 r = rope_rotate(x[base + a], x[base + b], c, s);
    x[base + a] = r.x;
    x[base + b] = r.y;
}
