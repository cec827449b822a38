#version 450
// out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight; one workgroup per row.
// out may alias x: every invocation reads its elements before the barrier that
// precedes its writes.
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer WBuf { float w[]; };
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 2) buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params {
    uint n_cols, x_off, x_stride, o_off, o_stride;
    float eps;
} p;
shared float red[128];

void main() {
    const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    const uint xr = p.x_off + t * p.x_stride;
    float ss = 0.0;
    for (uint i = tid; i < p.n_cols; i += 128u) ss += x[xr + i] * x[xr + i];
    red[tid] = ss;
    barrier();
    for (uint s = 64u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    const float scale = 1.0 / sqrt(red[0] / float(p.n_cols) + p.eps);
    const uint orow = p.o_off + t * p.o_stride;
    for (uint i = tid; i < p.n_cols; i += 128u) outv[orow + i] = x[xr + i] * scale * w[i];
}
