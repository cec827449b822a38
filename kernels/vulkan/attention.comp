#version 450
// Causal attention of one (query head, token) per workgroup over the cells
// [0, n_scan) of one layer's KV cache. Cells go by in chunks of 128 (one per
// invocation for the score) with a running max and sum (online softmax), so no
// scratch grows with the context; invocation d accumulates output dimensions
// d and d + 128 (head_dim <= 256). A score reads its key row 16 bytes at a time
// when rows start on 16 bytes (head_dim and n_kv_dim multiples of 8 halves or
// 4 floats): one load per 8 (4) elements instead of one per element, which
// made decode steps wait on 128 loads in a row per cell.
//
// arena: cell_pos[n_scan] (int, -1 empty), cell_seqs[n_scan] (two words each,
// bit s = sequence s), then per token its position and sequence.
layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer QBuf { float q[]; };
layout(std430, binding = 2) readonly buffer Arena { int arena[]; };
layout(std430, binding = 3) readonly buffer KBuf { uint kw[]; };
layout(std430, binding = 3) readonly buffer KBuf4 { uvec4 kw4[]; };
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

// q . K[kb .. kb + head_dim), kb a multiple of 8 (F16) or 4 (F32).
float k_dot_vec(uint kb) {
    float sum = 0.0;
    if (p.f16 != 0u) {
        for (uint d = 0u; d < p.head_dim; d += 8u) {
            const uvec4 w = kw4[(kb + d) >> 3];
            sum += qh[d] * unpackHalf2x16(w.x).x + qh[d + 1u] * unpackHalf2x16(w.x).y +
                   qh[d + 2u] * unpackHalf2x16(w.y).x + qh[d + 3u] * unpackHalf2x16(w.y).y +
                   qh[d + 4u] * unpackHalf2x16(w.z).x + qh[d + 5u] * unpackHalf2x16(w.z).y +
                   qh[d + 6u] * unpackHalf2x16(w.w).x + qh[d + 7u] * unpackHalf2x16(w.w).y;
        }
    } else {
        for (uint d = 0u; d < p.head_dim; d += 4u)
            sum += dot(vec4(qh[d], qh[d + 1u], qh[d + 2u], qh[d + 3u]), uintBitsToFloat(kw4[(kb + d) >> 2]));
    }
    return sum;
}

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

    const uint align = p.f16 != 0u ? 8u : 4u;
    const bool vec_keys = p.head_dim % align == 0u && p.n_kv_dim % align == 0u;  // uniform
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
                if (vec_keys) {
                    dot = k_dot_vec(kb);
                } else {
                    for (uint d = 0u; d < p.head_dim; ++d) dot += qh[d] * k_at(kb + d);
                }
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
