#version 450
// kiln:subgroup-variant
// out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight; one workgroup
// per row (rms_norm_rows.glsl; q_stride != 0 also writes the q8 copy). out may
// alias x: every invocation reads its elements before the reduction's barrier
// and writes only elements it read.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "q8_act.glsl"
layout(std430, binding = 0) readonly buffer WBuf { float w[]; };
layout(std430, binding = 0) readonly buffer WBuf4 { vec4 w4[]; };
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer OutBuf { float outv[]; };
layout(std430, binding = 2) writeonly buffer OutBuf4 { vec4 outv4[]; };
layout(push_constant) uniform Params {
    uint n_cols, x_off, x_stride, o_off, o_stride;
    float eps;
    uint q_stride;
} p;
#include "rms_norm_rows.glsl"

void row_block(uint t, uint blk, bool vec, out vec4 v[8]) {
    const uint xr = p.x_off + t * p.x_stride;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) v[k] = x_load4(xr, blk * 32u + 4u * k, p.n_cols, vec);
}

void main() {
    const uint t = gl_WorkGroupID.x;
    const bool vec = ((p.x_off | p.x_stride | p.o_off | p.o_stride) & 3u) == 0u;
    rms_row(t, p.x_off + t * p.x_stride, p.o_off + t * p.o_stride, vec);
}
