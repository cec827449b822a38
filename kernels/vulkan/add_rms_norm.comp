#version 450
// kiln:subgroup-variant
// The residual step and the next norm in one pass: x[t, :] += b[t, :], then
// out[t, :] = rms_norm(x[t, :]) * weight (rms_norm_rows.glsl; q_stride != 0
// also writes the q8 copy). One workgroup per row; each invocation adds, and
// later scales, only its own blocks, so x needs no barrier between the two.
// The sums and products are rms_norm.comp's after add.comp's, bit for bit.
// out must not alias x or b.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "q8_act.glsl"
layout(std430, binding = 0) readonly buffer WBuf { float w[]; };
layout(std430, binding = 0) readonly buffer WBuf4 { vec4 w4[]; };
layout(std430, binding = 1) buffer XBuf { float x[]; };
layout(std430, binding = 1) buffer XBuf4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer OutBuf { float outv[]; };
layout(std430, binding = 2) writeonly buffer OutBuf4 { vec4 outv4[]; };
layout(std430, binding = 4) readonly buffer BBuf { float b[]; };
layout(std430, binding = 4) readonly buffer BBuf4 { vec4 b4[]; };
layout(push_constant) uniform Params {
    uint n_cols, x_off, x_stride, o_off, o_stride;
    float eps;
    uint q_stride, b_off, b_stride;
} p;
#include "rms_norm_rows.glsl"
DEFINE_LOAD4(b_load4, b, b4)
DEFINE_STORE4(x_store4, x, x4)

void row_block(uint t, uint blk, bool vec, out vec4 v[8]) {
    const uint xr = p.x_off + t * p.x_stride, br = p.b_off + t * p.b_stride;
    vec4 bv[8];
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        v[k] = x_load4(xr, blk * 32u + 4u * k, p.n_cols, vec);
        bv[k] = b_load4(br, blk * 32u + 4u * k, p.n_cols, vec);
    }
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        v[k] += bv[k];
        x_store4(xr, blk * 32u + 4u * k, p.n_cols, vec, v[k]);
    }
}

void main() {
    const uint t = gl_WorkGroupID.x;
    const bool vec = ((p.x_off | p.x_stride | p.o_off | p.o_stride | p.b_off | p.b_stride) & 3u) == 0u;
    rms_row(t, p.x_off + t * p.x_stride, p.o_off + t * p.o_stride, vec);
}
