#version 450
// The residual step and the next norm in one pass: x[t, :] += b[t, :], then
// out[t, :] = rms_norm(x[t, :]) * weight (rms_norm_rows.glsl; q_stride != 0
// also writes the q8 copy). One workgroup per row; each invocation adds, and
// later scales, only its own elements, so x needs no barrier between the two.
// The sums and products are rms_norm.comp's after add.comp's, bit for bit.
// out must not alias x or b.
#extension GL_GOOGLE_include_directive : require
#include "q8_act.glsl"
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer WBuf { float w[]; };
layout(std430, binding = 1) buffer XBuf { float x[]; };
layout(std430, binding = 2) writeonly buffer OutBuf { float outv[]; };
layout(std430, binding = 4) readonly buffer BBuf { float b[]; };
layout(push_constant) uniform Params {
    uint n_cols, x_off, x_stride, o_off, o_stride;
    float eps;
    uint q_stride, b_off, b_stride;
} p;
#include "rms_norm_rows.glsl"

void main() {
    const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    const uint xr = p.x_off + t * p.x_stride, br = p.b_off + t * p.b_stride;
    float ss = 0.0;
    for (uint i = tid; i < p.n_cols; i += 128u) {
        const float s = x[xr + i] + b[br + i];
        x[xr + i] = s;
        ss += s * s;
    }
    rms_write(xr, p.o_off + t * p.o_stride, t, rms_scale(ss));
}
