#version 450
// out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight; one workgroup per
// row (rms_norm_rows.glsl; q_stride != 0 also writes the q8 copy). out may alias
// x: every invocation reads its elements before the barrier that precedes its
// writes, and writes only elements it read.
#extension GL_GOOGLE_include_directive : require
#include "q8_act.glsl"
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer WBuf { float w[]; };
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 2) buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params {
    uint n_cols, x_off, x_stride, o_off, o_stride;
    float eps;
    uint q_stride;
} p;
#include "rms_norm_rows.glsl"

void main() {
    const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    const uint xr = p.x_off + t * p.x_stride;
    float ss = 0.0;
    for (uint i = tid; i < p.n_cols; i += 128u) ss += x[xr + i] * x[xr + i];
    rms_write(xr, p.o_off + t * p.o_stride, t, rms_scale(ss));
}
