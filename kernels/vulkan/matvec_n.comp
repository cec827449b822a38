#version 450
// kiln:per-weight-type
// kiln:subgroup-variant
// kiln:int-dot-variant q4_0 q4_1 q5_0 q5_1 q8_0
// ys[i] = x · W_i^T for up to three weights of one type on one input (Q, K
// and V; gate and up) in one dispatch: matvec.glsl, the workgroups laid end to
// end over the weights (weight i takes groups first_group[i] ..). Weights at
// bindings 0, 6, 7, outputs at 2, 4, 5; a workgroup's weight is uniform
// across it, so the branch picking its buffer costs no divergence.
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#define MV_WEIGHT_SLOTS 3
layout(push_constant) uniform Params {
    uvec4 first_group, n_out, y_off, y_stride;  // per weight; first_group[i] = ~0u for absent ones
    uint n_in, n_tok, w_row_bytes, x_off, x_stride;
    uint q_stride;  // words per token in binding 3 (USE_INT_DOT)
} p;
layout(std430, binding = 0) readonly buffer W0 { uint w0_words[]; };
layout(std430, binding = 6) readonly buffer W1 { uint w1_words[]; };
layout(std430, binding = 7) readonly buffer W2 { uint w2_words[]; };
layout(std430, binding = 2) writeonly buffer Y0 { float y0[]; };
layout(std430, binding = 4) writeonly buffer Y1 { float y1[]; };
layout(std430, binding = 5) writeonly buffer Y2 { float y2[]; };
uint w_sel;  // the weight of this workgroup
uint w_word(uint i) {
    if (w_sel == 0u) return w0_words[i];
    if (w_sel == 1u) return w1_words[i];
    return w2_words[i];
}
void mv_store(uint i, float v) {
    const uint at = p.y_off[w_sel] + i;
    if (w_sel == 0u) y0[at] = v;
    else if (w_sel == 1u) y1[at] = v;
    else y2[at] = v;
}
#include "matvec.glsl"

void main() {
    const uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    w_sel = g >= p.first_group[2] ? 2u : g >= p.first_group[1] ? 1u : 0u;
    const uint o0 = (g - p.first_group[w_sel]) * NROWS;
    if (o0 >= p.n_out[w_sel]) return;  // uniform across the workgroup
    matvec_rows(o0, p.n_out[w_sel], p.y_stride[w_sel]);
}
