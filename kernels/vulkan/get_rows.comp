#version 450
// kiln:per-weight-type
// out[t, :] = dequantized row ids[t] of the table (the token embedding lookup).
#extension GL_GOOGLE_include_directive : require
#include "dequant.glsl"

layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer Arena { uint arena[]; };
layout(std430, binding = 2) writeonly buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params {
    uint n_cols, w_row_bytes, ids_off, o_off, o_stride;
} p;

void main() {
    const uint t = gl_WorkGroupID.y;
    const uint row = arena[p.ids_off + t] * p.w_row_bytes;
    for (uint i = gl_WorkGroupID.x * 128u + gl_LocalInvocationID.x; i < p.n_cols; i += 128u * gl_NumWorkGroups.x)
        outv[p.o_off + t * p.o_stride + i] = dq(row + (i / BLOCK_SIZE) * BLOCK_BYTES, i % BLOCK_SIZE);
}
