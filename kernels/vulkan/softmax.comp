#version 450
// Row-wise softmax in place; one workgroup per row.
layout(local_size_x = 128) in;
layout(std430, binding = 1) buffer XBuf { float x[]; };
layout(push_constant) uniform Params { uint n_cols, x_off, x_stride; } p;
shared float red[128];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint r = p.x_off + gl_WorkGroupID.x * p.x_stride;
    float m = -1.0 / 0.0;
    for (uint i = tid; i < p.n_cols; i += 128u) m = max(m, x[r + i]);
    red[tid] = m;
    barrier();
    for (uint s = 64u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] = max(red[tid], red[tid + s]);
        barrier();
    }
    m = red[0];
    barrier();
    float sum = 0.0;
    for (uint i = tid; i < p.n_cols; i += 128u) {
        const float e = exp(x[r + i] - m);
        x[r + i] = e;
        sum += e;
    }
    red[tid] = sum;
    barrier();
    for (uint s = 64u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    const float sum_all = red[0];
    for (uint i = tid; i < p.n_cols; i += 128u) x[r + i] /= sum_all;
}
