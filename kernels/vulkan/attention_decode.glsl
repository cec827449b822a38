// Attention of query tokens over the cells of one layer's KV cache, every
// batch the cooperative-matrix prompt shader (attention_cm.glsl) does not
// take: decode steps, the server's batches of several slots, prompts on
// devices without cooperative matrices, head sizes other than 64/128, F32
// caches. Included by attention_decode.comp (rows on 16 bytes: head_dim a
// multiple of 8 halves or 4 floats) and attention_decode_rows.comp (any even
// head_dim: rows read element by element into the same 16-byte slots).
//
// Workgroup (h, t, s) takes query head h of token t over split s of the
// cells, [s * split_cells, min((s + 1) * split_cells, n_scan)), cut to the
// token's range (attention_cells.h: a range that holds every cell the token
// sees, for any order of cells; in a causal prompt its first to its last
// visible cell, so early tokens stop after a few chunks), in chunks of 128
// cells with a running max and sum (online softmax). Per chunk:
//  - scores: invocation i takes cell c0 + i, its key row by 16-byte loads
//    issued together with the cell's position and sequence words (the mask
//    drops the score after the loads, so no load waits on it);
//  - the chunk's max: subgroupMax and one barrier (without subgroups, a
//    shared-memory tree);
//  - the weights exp(s - m) into shared memory, one barrier;
//  - values: invocation (lane, slot) owns the 8 (F16) or 4 (F32) output
//    dimensions of one 16-byte slot of a value row and sums the chunk's cells
//    lane, lane + n_lanes, ...: 16-byte loads, independent across cells.
// Shared arrays alternate between chunks, so two barriers a chunk suffice
// (the per-token attention.comp it replaced took ~16). At the end the lanes'
// sums meet in shared memory.
// One split writes the output (and with q8_stride != 0 its q8 copy for the
// output projection's integer-dot matvec, head_dim % 32 == 0: q8_act.glsl);
// several write, per split, (m, l, the unnormalized output) for
// attention_merge.comp (flash-decoding), which then writes both.
// The backend checks: head_dim <= 256 and even.
//
// arena: cell_pos[n_scan] (int, -1 empty), cell_seqs[n_scan] (two words each,
// bit s = sequence s), then per token its position, its sequence, and its
// visible range (first cell, one past the last; two words).
#extension GL_EXT_control_flow_attributes : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#define Q8_BINDING 7
#include "q8_act.glsl"
#define WG 128u
#define KB 16u  // key slots loaded together (a 128-dimension F16 row)
layout(local_size_x = 128) in;
// out may share q's buffer (other rows): neither is restrict. q by floats
// (once per workgroup), so its rows need no 16-byte alignment.
layout(std430, binding = 1) readonly buffer QueryBuf { float q[]; };
layout(std430, binding = 2) readonly restrict buffer Arena { int arena[]; };
#ifdef ROWS_BY_ELEMENT
layout(std430, binding = 3) readonly buffer KBuf { uint kw[]; };
layout(std430, binding = 4) readonly buffer VBuf { uint vw[]; };
#else
layout(std430, binding = 3) readonly restrict buffer KBuf4 { uvec4 kw4[]; };
layout(std430, binding = 4) readonly restrict buffer VBuf4 { uvec4 vw4[]; };
#endif
layout(std430, binding = 5) writeonly buffer OutBuf { float outv[]; };
// Per (token, head, split): m, l, then head_dim unnormalized outputs.
layout(std430, binding = 6) writeonly restrict buffer PartBuf { float part[]; };
layout(push_constant) uniform Params {
    uint q_off, q_stride, o_off, o_stride, group, head_dim, n_kv_dim, n_scan, f16;
    float scale;
    uint cell_pos_off, cell_seqs_off, tok_pos_off, tok_seq_off, split_cells, q8_stride, tok_range_off;
} p;

shared vec4 qs[64];        // the query head, zeros past head_dim
shared float red[2][WG];   // chunk maxima, by chunk parity
shared float pr[2][WG];    // the chunk's weights, by chunk parity
shared vec4 acc_sh[WG][2]; // the lanes' sums at the end
shared float l_sh[WG];
shared float o_sh[256];    // the output head, for its q8 copy
#include "attention_q8.glsl"

// Slot j of a value or key row (8 halves or 4 floats) as floats.
void unpack_slot(uvec4 w, bool f16, out vec4 a, out vec4 b) {
    if (f16) {
        a = vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
        b = vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
    } else {
        a = uintBitsToFloat(w);
        b = vec4(0.0);
    }
}

#ifdef ROWS_BY_ELEMENT
// Slot j of the key (key) or value row starting at element e0, as the 16
// bytes a row on 16 bytes would hold there: element by element, zeros past
// head_dim (so the slot's products and sums there add nothing).
uvec4 row_slot(bool key, uint e0, uint j, bool f16) {
    uvec4 w = uvec4(0u);
    const uint per = f16 ? 8u : 4u;
    for (uint i = 0u; i < per && j * per + i < p.head_dim; ++i) {
        const uint e = e0 + j * per + i;
        if (f16) {
            const uint word = key ? kw[e >> 1] : vw[e >> 1];
            w[i >> 1] |= ((word >> ((e & 1u) * 16u)) & 0xffffu) << ((i & 1u) * 16u);
        } else {
            w[i] = key ? kw[e] : vw[e];
        }
    }
    return w;
}
#define K_SLOT(e0, j, per) row_slot(true, e0, j, f16)
#define V_SLOT(e0, j, per) row_slot(false, e0, j, f16)
#else
#define K_SLOT(e0, j, per) kw4[k0 + (j)]
#define V_SLOT(e0, j, per) vw4[(e0) / (per) + (j)]
#endif

// q . K row starting at element e0, KB slots loaded at a time.
float k_dot(uint e0, uint n_slots, bool f16) {
    const uint per = f16 ? 8u : 4u;
#ifndef ROWS_BY_ELEMENT
    const uint k0 = e0 / per;  // the row's first slot
#endif
    float sum = 0.0;
    for (uint j0 = 0u; j0 < n_slots; j0 += KB) {
        uvec4 kr[KB];
        [[unroll]] for (uint j = 0u; j < KB; ++j) kr[j] = j0 + j < n_slots ? K_SLOT(e0, j0 + j, per) : uvec4(0u);
        [[unroll]] for (uint j = 0u; j < KB; ++j) {
            if (j0 + j >= n_slots) break;
            vec4 a, b;
            unpack_slot(kr[j], f16, a, b);
            sum += f16 ? dot(qs[2u * (j0 + j)], a) + dot(qs[2u * (j0 + j) + 1u], b) : dot(qs[j0 + j], a);
        }
    }
    return sum;
}

// The largest score of the chunk (every invocation's s), in red[par].
float chunk_max(float s, uint par) {
#ifdef USE_SUBGROUP
    const float sm = subgroupMax(s);
    if (subgroupElect()) red[par][gl_SubgroupID] = sm;
    barrier();
    float r = red[par][0];
    for (uint i = 1u; i < gl_NumSubgroups; ++i) r = max(r, red[par][i]);
    return r;
#else
    const uint tid = gl_LocalInvocationID.x;
    red[par][tid] = s;
    barrier();
    [[unroll]] for (uint st = WG / 2u; st > 0u; st >>= 1) {
        if (tid < st) red[par][tid] = max(red[par][tid], red[par][tid + st]);
        barrier();
    }
    return red[par][0];
#endif
}

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, sp = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
    const bool f16 = p.f16 != 0u;
    const uint per = f16 ? 8u : 4u;            // elements per 16-byte slot
    const uint n_slots = (p.head_dim + per - 1u) / per;  // <= 64
    const uint n_lanes = WG / n_slots;         // >= 2
    const uint slot = tid % n_slots, lane = tid / n_slots;
    const uint kv_off = (h / p.group) * p.head_dim;
    const uint qb = p.q_off + t * p.q_stride + h * p.head_dim;
    for (uint d = tid; d < 256u; d += WG) qs[d >> 2][d & 3u] = d < p.head_dim ? q[qb + d] : 0.0;
    const int pos = arena[p.tok_pos_off + t];
    const uint seq = uint(arena[p.tok_seq_off + t]);
    // The split's cells that hold what the token sees (none: c_begin >= c_end, no chunk).
    const uint split_begin = sp * p.split_cells;
    const uint c_begin = max(split_begin, uint(arena[p.tok_range_off + 2u * t]));
    const uint c_end = min(min(split_begin + p.split_cells, p.n_scan), uint(arena[p.tok_range_off + 2u * t + 1u]));
    barrier();

    const float NEG_INF = -1.0 / 0.0;
    float m = NEG_INF, l = 0.0;
    vec4 acc0 = vec4(0.0), acc1 = vec4(0.0);
    uint par = 0u;
    for (uint c0 = c_begin; c0 < c_end; c0 += WG, par ^= 1u) {
        const uint c = c0 + tid;
        float s = NEG_INF;
        if (c < c_end) {
            const int cp = arena[p.cell_pos_off + c];
            const uint word = uint(arena[p.cell_seqs_off + 2u * c + (seq >> 5)]);
            const float d = k_dot(c * p.n_kv_dim + kv_off, n_slots, f16);
            if (cp >= 0 && cp <= pos && ((word >> (seq & 31u)) & 1u) != 0u) s = d * p.scale;
        }
        const float m_new = max(m, chunk_max(s, par));
        if (m_new == NEG_INF) continue;  // nothing visible yet: uniform across the workgroup
        pr[par][tid] = s == NEG_INF ? 0.0 : exp(s - m_new);
        barrier();
        const float alpha = m == NEG_INF ? 0.0 : exp(m - m_new);
        acc0 *= alpha;
        acc1 *= alpha;
        l *= alpha;
        m = m_new;
        if (lane < n_lanes) {
            const uint n = min(WG, c_end - c0);
            for (uint k = lane; k < n; k += n_lanes) {
                const float w = pr[par][k];
                vec4 a, b;
                unpack_slot(V_SLOT((c0 + k) * p.n_kv_dim + kv_off, slot, per), f16, a, b);
                // A cell with no weight adds nothing, whatever its values hold.
                if (w != 0.0) {
                    acc0 += w * a;
                    acc1 += w * b;
                }
                l += w;
            }
        }
    }

    acc_sh[tid][0] = acc0;
    acc_sh[tid][1] = acc1;
    l_sh[tid] = l;
    barrier();
    float l_all = 0.0;
    for (uint ln = 0u; ln < n_lanes; ++ln) l_all += l_sh[ln * n_slots];
    const bool split = gl_NumWorkGroups.z > 1u;
    const uint pb = ((t * gl_NumWorkGroups.x + h) * gl_NumWorkGroups.z + sp) * (p.head_dim + 2u);
    for (uint d = tid; d < p.head_dim; d += WG) {
        const uint sl = d / per, e = d % per;
        float o = 0.0;
        for (uint ln = 0u; ln < n_lanes; ++ln) o += acc_sh[ln * n_slots + sl][e >> 2][e & 3u];
        if (split) {
            part[pb + 2u + d] = o;
        } else {
            // Nothing visible: a zero output, never NaN (as the reference).
            const float v = l_all > 0.0 ? o / l_all : 0.0;
            outv[p.o_off + t * p.o_stride + h * p.head_dim + d] = v;
            o_sh[d] = v;
        }
    }
    if (split) {
        if (tid == 0u) {
            part[pb] = m;
            part[pb + 1u] = l_all;
        }
    } else if (p.q8_stride != 0u) {
        barrier();
        q8_store_head(h, t);
    }
}
