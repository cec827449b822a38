#version 450
// out[i, :] = src[rows[i], :].
layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer Src { float src[]; };
layout(std430, binding = 2) readonly buffer Arena { uint arena[]; };
layout(std430, binding = 3) writeonly buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params { uint n_cols, s_off, s_stride, rows_off, o_off, o_stride; } p;

void main() {
    const uint i = gl_WorkGroupID.y;
    const uint sr = p.s_off + arena[p.rows_off + i] * p.s_stride;
    for (uint c = gl_WorkGroupID.x * 128u + gl_LocalInvocationID.x; c < p.n_cols; c += 128u * gl_NumWorkGroups.x)
        outv[p.o_off + i * p.o_stride + c] = src[sr + c];
}
