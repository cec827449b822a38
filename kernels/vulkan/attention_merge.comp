#version 450
// The second pass of split attention (attention_decode.glsl): per
// (query head h, token t), the splits' (m_s, l_s, o_s) become
// out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s with M = max_s m_s;
// splits that saw no cell (m_s = -inf) weigh nothing, and a token that saw
// none at all gets zeros (as the reference). With q8_stride != 0 the output's
// q8 copy too (attention_decode.glsl's q8_store_head).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#define Q8_BINDING 7
#include "q8_act.glsl"
layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly restrict buffer PartBuf { float part[]; };
layout(std430, binding = 5) writeonly restrict buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params {
    uint o_off, o_stride, head_dim, n_split, q8_stride;
} p;
shared float o_sh[256];
#include "attention_q8.glsl"

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint row = p.head_dim + 2u, base = (t * gl_NumWorkGroups.x + h) * p.n_split * row;
    const float NEG_INF = -1.0 / 0.0;
    float mx = NEG_INF;
    for (uint s = 0u; s < p.n_split; ++s) mx = max(mx, part[base + s * row]);
    float l = 0.0;
    for (uint s = 0u; s < p.n_split; ++s) {
        const float ms = part[base + s * row];
        if (ms != NEG_INF) l += part[base + s * row + 1u] * exp(ms - mx);
    }
    for (uint d = tid; d < p.head_dim; d += 128u) {
        float o = 0.0;
        for (uint s = 0u; s < p.n_split; ++s) {
            const float ms = part[base + s * row];
            if (ms != NEG_INF) o += part[base + s * row + 2u + d] * exp(ms - mx);
        }
        const float v = l > 0.0 ? o / l : 0.0;
        outv[p.o_off + t * p.o_stride + h * p.head_dim + d] = v;
        o_sh[d] = v;
    }
    if (p.q8_stride != 0u) {
        barrier();
        q8_store_head(h, t);
    }
}
