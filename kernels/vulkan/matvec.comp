#version 450
// kiln:per-weight-type
// kiln:subgroup-variant
// kiln:int-dot-variant q4_0 q4_1 q5_0 q5_1 q8_0
// y = x · W^T for 1..4 tokens (decode): matvec.glsl on one weight.
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(push_constant) uniform Params {
    uint n_in, n_out, n_tok, w_row_bytes, x_off, x_stride, y_off, y_stride;
    uint q_stride;  // words per token in binding 3 (USE_INT_DOT)
} p;
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };
void mv_store(uint i, float v) { y[p.y_off + i] = v; }
#include "matvec.glsl"

void main() {
    const uint o0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * NROWS;
    if (o0 >= p.n_out) return;  // uniform across the workgroup
    matvec_rows(o0, p.n_out, p.y_stride);
}
