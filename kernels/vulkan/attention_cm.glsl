// Prompt attention on cooperative matrices (VK_NV_cooperative_matrix 16x8x16,
// f16 in, f32 sums) over an F16 KV cache: attention_cm64.comp and
// attention_cm128.comp include this with HEAD_DIM defined. The same causal,
// sequence and empty-cell rules as attention_decode.glsl, for batches of 16+ tokens.
//
// A workgroup of 4 subgroups takes 64 queries of one head (16 per subgroup,
// their scaled rows held as matrices) and walks the cells in tiles of 32, K and
// V rows put into shared memory as f16 by all 128 invocations. Two passes: the
// first finds each query's maximum score and softmax sum, the second forms
// P = exp(s - max) / sum in f16 and adds P V into accumulators that stay in
// registers. Recomputing Q K^T in the second pass costs less than rescaling
// the accumulators as an online softmax would: NV matrices cannot be scaled
// row by row without a trip through shared memory.
//
// Each tile's cell positions and sequence words go to shared memory first: a
// tile no query of the workgroup sees is not loaded, and a subgroup skips the
// products of a tile none of its 16 queries sees (a causal prompt: about half).
//
// Scores go through shared memory (a subgroup's 16 x 32 floats) for the mask
// and the softmax: lane 2r + h owns query row r, cells 16h .. 16h + 15. Rows of
// empty cells and cells past n_scan are loaded as zeros, so that garbage in an
// unwritten cell (NaN as f16) cannot reach the sums through a zero weight.
// Shared arrays are plain float16_t/float (see matmul_cm.glsl on why).
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_EXT_control_flow_attributes : require

#define D HEAD_DIM
#define QT 64u       // queries per workgroup
#define CT 32u       // cells per tile
#define DS (D + 8u)  // halves per shared row of Q, K and V: 16 bytes of padding keep matrix loads off shared banks
#define PS 40u       // halves per shared row of P

#define MatA fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define MatB fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define MatC fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>

layout(local_size_x = 128) in;
layout(std430, binding = 1) readonly buffer QBuf { float q[]; };
layout(std430, binding = 2) readonly buffer Arena { int arena[]; };
layout(std430, binding = 3) readonly buffer KBuf { uvec4 kw4[]; };
layout(std430, binding = 4) readonly buffer VBuf { uvec4 vw4[]; };
layout(std430, binding = 5) buffer OutBuf { float outv[]; };  // not writeonly: coopMatStoreNV
layout(push_constant) uniform Params {
    uint q_off, q_stride, o_off, o_stride, group, head_dim, n_kv_dim, n_scan, f16;
    float scale;
    uint cell_pos_off, cell_seqs_off, tok_pos_off, tok_seq_off, n_tok;
} p;

shared float16_t qs[QT * DS];
shared float16_t ks[CT * DS];
shared float16_t vs[CT * DS];
shared float ss[4u * 16u * CT];
shared float16_t ps[4u * 16u * PS];
// The tile's cells: position (-1: empty or past n_scan) and both sequence words;
// and whether any query of the workgroup sees one of them.
shared int cell_pos[CT];
shared uint cell_seqs[2u * CT];
shared uint tile_live;

const float NEG_INF = -1.0 / 0.0;

// The 8 halves of v into arr[at .. at + 7].
#define PUT8(arr, at, v)                                        \
    [[unroll]] for (uint c_ = 0u; c_ < 4u; ++c_) {             \
        const f16vec2 h_ = unpackFloat2x16((v)[c_]);            \
        arr[(at) + 2u * c_] = h_.x;                             \
        arr[(at) + 2u * c_ + 1u] = h_.y;                        \
    }

// The tile's cell bookkeeping into shared memory (before a barrier).
void load_cells(uint c0) {
    const uint tid = gl_LocalInvocationID.x;
    if (tid < CT) {
        const uint c = c0 + tid;
        const bool inside = c < p.n_scan;
        cell_pos[tid] = inside ? arena[p.cell_pos_off + c] : -1;
        cell_seqs[2u * tid] = inside ? uint(arena[p.cell_seqs_off + 2u * c]) : 0u;
        cell_seqs[2u * tid + 1u] = inside ? uint(arena[p.cell_seqs_off + 2u * c + 1u]) : 0u;
    }
    if (tid == 0u) tile_live = 0u;
}

// Bit j: the query at (pos, seq) sees tile cell j0 + j (after load_cells' barrier).
uint visible16(uint j0, int pos, uint seq) {
    uint bits = 0u;
    [[unroll]] for (uint j = 0u; j < 16u; ++j) {
        const int cp = cell_pos[j0 + j];
        const uint word = cell_seqs[2u * (j0 + j) + (seq >> 5)];
        if (cp >= 0 && cp <= pos && ((word >> (seq & 31u)) & 1u) != 0u) bits |= 1u << j;
    }
    return bits;
}

// Whether any subgroup of the workgroup sees the tile: after a barrier, tile_live says.
void mark_live(uint bits) {
    if (subgroupAny(bits != 0u) && subgroupElect()) atomicOr(tile_live, 1u);
}

// Cells c0 .. c0 + CT - 1 of this head's K (and V) rows into ks (vs).
void load_tile(uint c0, uint kv_off, bool with_v) {
    for (uint e = gl_LocalInvocationID.x; e < CT * (D / 8u); e += 128u) {
        const uint r = e / (D / 8u), w = e % (D / 8u);
        const bool live = cell_pos[r] >= 0;
        const uint src = ((c0 + r) * p.n_kv_dim + kv_off) / 8u + w;
        const uvec4 kv = live ? kw4[src] : uvec4(0u);
        PUT8(ks, r * DS + 8u * w, kv);
        if (with_v) {
            const uvec4 vv = live ? vw4[src] : uvec4(0u);
            PUT8(vs, r * DS + 8u * w, vv);
        }
    }
}

// Tile c0's cells, then, when any query of the workgroup sees one of them, its
// K (and V) rows; returns whether it loaded them (uniform across the workgroup).
// vis: bit j, this lane's query sees cell j0 + j.
bool enter_tile(uint c0, uint kv_off, bool with_v, uint j0, int pos, uint seq, out uint vis) {
    load_cells(c0);
    barrier();
    vis = visible16(j0, pos, seq);
    mark_live(vis);
    barrier();
    if (tile_live == 0u) return false;
    load_tile(c0, kv_off, with_v);
    barrier();
    return true;
}

// This subgroup's 16 x CT scores of the tile in ks, into its part of ss.
void scores(const MatA qa[D / 16u], uint sg) {
    MatC acc[CT / 8u];
    [[unroll]] for (uint n = 0u; n < CT / 8u; ++n) acc[n] = MatC(0.0);
    [[unroll]] for (uint k = 0u; k < D / 16u; ++k)
        [[unroll]] for (uint n = 0u; n < CT / 8u; ++n) {
            MatB kb;  // 16 dimensions x 8 cells: cell rows have dimensions contiguous, so column-major
            coopMatLoadNV(kb, ks, 8u * n * DS + 16u * k, DS, true);
            acc[n] = coopMatMulAddNV(qa[k], kb, acc[n]);
        }
    [[unroll]] for (uint n = 0u; n < CT / 8u; ++n) coopMatStoreNV(acc[n], ss, sg * 16u * CT + 8u * n, CT, false);
    subgroupMemoryBarrierShared();
    subgroupBarrier();
}

void main() {
    const uint h = gl_WorkGroupID.x, tq0 = gl_WorkGroupID.y * QT, tid = gl_LocalInvocationID.x;
    const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint kv_off = (h / p.group) * D;

    // The workgroup's query rows, scaled, as f16 (zeros past n_tok).
    for (uint e = tid; e < QT * (D / 4u); e += 128u) {
        const uint r = e / (D / 4u), d = 4u * (e % (D / 4u)), t = tq0 + r;
        vec4 v = vec4(0.0);
        if (t < p.n_tok) {
            const uint b = p.q_off + t * p.q_stride + h * D + d;
            v = vec4(q[b], q[b + 1u], q[b + 2u], q[b + 3u]) * p.scale;
        }
        qs[r * DS + d] = float16_t(v.x);
        qs[r * DS + d + 1u] = float16_t(v.y);
        qs[r * DS + d + 2u] = float16_t(v.z);
        qs[r * DS + d + 3u] = float16_t(v.w);
    }
    barrier();
    MatA qa[D / 16u];
    [[unroll]] for (uint k = 0u; k < D / 16u; ++k) coopMatLoadNV(qa[k], qs, 16u * sg * DS + 16u * k, DS, false);

    // This lane's query row and cells; a row past n_tok sees nothing.
    const uint r = lane >> 1, j0 = 16u * (lane & 1u), t = tq0 + 16u * sg + r;
    const int pos = t < p.n_tok ? arena[p.tok_pos_off + t] : -1;
    const uint seq = t < p.n_tok ? uint(arena[p.tok_seq_off + t]) : 0u;
    const uint srow = sg * 16u * CT + r * CT;
    const uint n_tiles = (p.n_scan + CT - 1u) / CT;

    // Pass 1: each lane's running max and sum over its cells, then merged with its partner's.
    // Tiles no query of the workgroup sees are not loaded; a subgroup skips the
    // products of a tile none of its queries sees (causal prompts: about half).
    float m = NEG_INF, l = 0.0;
    for (uint tile = 0u; tile < n_tiles; ++tile) {
        const uint c0 = tile * CT;
        uint vis;
        if (enter_tile(c0, kv_off, false, j0, pos, seq, vis)) {
            if (subgroupAny(vis != 0u)) {
                scores(qa, sg);
                float s[16];
                float tmax = NEG_INF;
                [[unroll]] for (uint j = 0u; j < 16u; ++j) {
                    s[j] = (vis & (1u << j)) != 0u ? ss[srow + j0 + j] : NEG_INF;
                    tmax = max(tmax, s[j]);
                }
                if (tmax != NEG_INF) {
                    const float m_new = max(m, tmax);
                    float sum = 0.0;
                    [[unroll]] for (uint j = 0u; j < 16u; ++j) sum += exp(s[j] - m_new);  // exp(-inf) = 0
                    l = (m == NEG_INF ? 0.0 : l * exp(m - m_new)) + sum;
                    m = m_new;
                }
            }
        }
        barrier();  // the cells, ks and the flag are rewritten by the next tile
    }
    {
        const float m2 = subgroupShuffleXor(m, 1u), l2 = subgroupShuffleXor(l, 1u);
        const float mm = max(m, m2);
        if (mm != NEG_INF) {
            l = (m == NEG_INF ? 0.0 : l * exp(m - mm)) + (m2 == NEG_INF ? 0.0 : l2 * exp(m2 - mm));
            m = mm;
        }
    }
    const float inv_l = l > 0.0 ? 1.0 / l : 0.0;  // nothing visible: zero weights, a zero output

    // Pass 2: O = P V with P normalized as it is formed.
    MatC o[D / 8u];
    [[unroll]] for (uint n = 0u; n < D / 8u; ++n) o[n] = MatC(0.0);
    const uint prow = sg * 16u * PS + r * PS + j0;
    for (uint tile = 0u; tile < n_tiles; ++tile) {
        const uint c0 = tile * CT;
        uint vis;
        if (enter_tile(c0, kv_off, true, j0, pos, seq, vis)) {
            if (subgroupAny(vis != 0u)) {
                scores(qa, sg);
                [[unroll]] for (uint j = 0u; j < 16u; ++j)
                    ps[prow + j] = float16_t((vis & (1u << j)) != 0u ? exp(ss[srow + j0 + j] - m) * inv_l : 0.0);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                MatA pa[CT / 16u];
                [[unroll]] for (uint k = 0u; k < CT / 16u; ++k) coopMatLoadNV(pa[k], ps, sg * 16u * PS + 16u * k, PS, false);
                [[unroll]] for (uint n = 0u; n < D / 8u; ++n)
                    [[unroll]] for (uint k = 0u; k < CT / 16u; ++k) {
                        MatB vb;  // 16 cells x 8 dimensions, row-major in vs
                        coopMatLoadNV(vb, vs, 16u * k * DS + 8u * n, DS, false);
                        o[n] = coopMatMulAddNV(pa[k], vb, o[n]);
                    }
            }
        }
        barrier();  // the cells, ks, vs, ps and the flag are rewritten by the next tile
    }

    // out row t holds token t's heads side by side.
    const uint t_sg = tq0 + 16u * sg, ob = p.o_off + h * D;
    if (t_sg + 16u <= p.n_tok) {
        [[unroll]] for (uint n = 0u; n < D / 8u; ++n) coopMatStoreNV(o[n], outv, ob + t_sg * p.o_stride + 8u * n, p.o_stride, false);
        return;
    }
    // The last, cut group of queries: through this subgroup's scores, row by row in bounds.
    const uint st = sg * 16u * CT;
    [[unroll]] for (uint n = 0u; n < D / 8u; ++n) {
        coopMatStoreNV(o[n], ss, st, 8u, false);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        [[unroll]] for (uint e = lane; e < 128u; e += 32u) {
            const uint row = e / 8u;
            if (t_sg + row < p.n_tok) outv[ob + (t_sg + row) * p.o_stride + 8u * n + e % 8u] = ss[st + e];
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
    }
}
