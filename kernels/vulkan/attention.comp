#version 450
// Causal attention of one (query head, token) per workgroup over the cells
// [0, n_scan) of one layer's KV cache. Cells go by in chunks of 128 (one per
// invocation for the score) with a running max and sum (online softmax), so no
// scratch grows with the context; invocation d accumulates output dimensions
// d and d + 128 (head_dim <= 256).
//
// arena: cell_pos[n_scan] (int, -1 empty), cell_seqs[n_scan] (two words each,
// bit s = sequence s), then per token its position and sequence.
layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer QBuf { float q[]; };
layout(std430, binding = 2) readonly buffer Arena { int arena[]; };
layout(std430, binding = 3) readonly buffer KBuf { uint kw[]; };
layout(std430, binding = 4) readonly buffer VBuf { uint vw[]; };
layout(std430, binding = 5) writeonly buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params {
    uint q_off, q_stride, o_off, o_stride, group, head_dim, n_kv_dim, n_scan, f16;
    float scale;
    uint cell_pos_off, cell_seqs_off, tok_pos_off, tok_seq_off;
} p;

shared float qh[256];
shared float pr[128];
shared float red[128];

float k_at(uint idx) {
    if (p.f16 != 0u) return unpackHalf2x16(kw[idx >> 1])[idx & 1u];
    return uintBitsToFloat(kw[idx]);
}
float v_at(uint idx) {
    if (p.f16 != 0u) return unpackHalf2x16(vw[idx >> 1])[idx & 1u];
    return uintBitsToFloat(vw[idx]);
}

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint qbase = p.q_off + t * p.q_stride + h * p.head_dim;
    const uint kv_off = (h / p.group) * p.head_dim;
    const int pos = arena[p.tok_pos_off + t];
    const uint seq = uint(arena[p.tok_seq_off + t]);
    for (uint d = tid; d < p.head_dim; d += 128u) qh[d] = q[qbase + d];
    barrier();

    const float NEG_INF = -1.0 / 0.0;
    float m = NEG_INF, l = 0.0, acc0 = 0.0, acc1 = 0.0;
    for (uint c0 = 0u; c0 < p.n_scan; c0 += 128u) {
        const uint c = c0 + tid;
        float s = NEG_INF;
        if (c < p.n_scan) {
            const int cp = arena[p.cell_pos_off + c];
            const uint word = uint(arena[p.cell_seqs_off + 2u * c + (seq >> 5)]);
            if (cp >= 0 && cp <= pos && ((word >> (seq & 31u)) & 1u) != 0u) {
                const uint kb = c * p.n_kv_dim + kv_off;
                float dot = 0.0;
                for (uint d = 0u; d < p.head_dim; ++d) dot += qh[d] * k_at(kb + d);
                s = dot * p.scale;
            }
        }
        red[tid] = s;
        barrier();
        for (uint st = 64u; st > 0u; st >>= 1) {
            if (tid < st) red[tid] = max(red[tid], red[tid + st]);
            barrier();
        }
        const float m_new = max(m, red[0]);
        barrier();
        if (m_new == NEG_INF) continue;  // nothing visible yet: uniform across the workgroup
        const float e = s == NEG_INF ? 0.0 : exp(s - m_new);
        pr[tid] = e;
        red[tid] = e;
        barrier();
        for (uint st = 64u; st > 0u; st >>= 1) {
            if (tid < st) red[tid] += red[tid + st];
            barrier();
        }
        const float alpha = m == NEG_INF ? 0.0 : exp(m - m_new);
        l = l * alpha + red[0];
        acc0 *= alpha;
        acc1 *= alpha;
        const uint n = min(128u, p.n_scan - c0);
        for (uint k = 0u; k < n; ++k) {
            const float w = pr[k];
            if (w == 0.0) continue;
            const uint vb = (c0 + k) * p.n_kv_dim + kv_off;
            if (tid < p.head_dim) acc0 += w * v_at(vb + tid);
            if (tid + 128u < p.head_dim) acc1 += w * v_at(vb + tid + 128u);
        }
        m = m_new;
        barrier();  // pr and red are rewritten by the next chunk
    }
    // Nothing visible: a zero output, never NaN (as the reference).
    if (tid < p.head_dim) outv[p.o_off + t * p.o_stride + h * p.head_dim + tid] = l > 0.0 ? acc0 / l : 0.0;
    if (tid + 128u < p.head_dim) outv[p.o_off + t * p.o_stride + h * p.head_dim + tid + 128u] = l > 0.0 ? acc1 / l : 0.0;
}
