#version 450
// Causal attention for a batch of tokens (prompt processing): one workgroup
// takes the query heads of one KV head (the GQA group) for TQ consecutive
// tokens of the batch, QR = TQ * group query rows, and walks the cells
// [0, n_scan) in tiles of KT. Each tile's keys and values are read from
// global memory once into shared memory for all QR rows (attention.comp reads
// them once per (head, token)); a tile that none of the rows may see (causal
// and sequence masks) is skipped whole. Softmax online, per row a running max
// and sum as attention.comp, whose results this matches: a row that sees no
// cell gets zeros.
//
// Tile sizes come from the host (vulkan_backend.cpp): QR * head_dim <= 2048
// (queries, as floats), KT * cell_words <= 2048 (keys, values: raw cache
// words, cell_words = head_dim halves / 2 or floats), QR * KT <= 1024
// (scores), QR <= 32, KT <= 64. Row r is token t0 + r / group, query head
// kv_head * group + r % group.
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
    uint n_tok, tq, kt;
} p;

shared float qs[2048];   // qs[r * head_dim + d]
shared uint ks[2048];    // ks[c * cell_words + w]: the tile's keys as cache words
shared uint vs[2048];    // likewise its values (zeros for cells no row sees)
shared float pr[1024];   // pr[r * kt + c]: scores, then their exponentials
shared uint vis[64];     // vis[c]: bit j set when token t0 + j may see cell c0 + c
shared float row_max[32], row_sum[32], row_scale[32];
shared int tok_pos[32];
shared uint tok_seq[32];

float cache_at(uint word_base, uint d, bool values) {
    // Element d of a cell's head, from the shared words.
    const uint w = p.f16 != 0u ? values ? vs[word_base + (d >> 1)] : ks[word_base + (d >> 1)]
                               : values ? vs[word_base + d] : ks[word_base + d];
    return p.f16 != 0u ? unpackHalf2x16(w)[d & 1u] : uintBitsToFloat(w);
}

void main() {
    const uint kvh = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * p.tq, tid = gl_LocalInvocationID.x;
    const uint hd = p.head_dim, qr = p.tq * p.group, kt = p.kt;
    const uint cell_words = p.f16 != 0u ? hd / 2u : hd;
    const uint kv_word_off = (kvh * hd) / (p.f16 != 0u ? 2u : 1u);
    const uint row_words = p.f16 != 0u ? p.n_kv_dim / 2u : p.n_kv_dim;  // cache words per cell
    const uint n_tok_here = min(p.tq, p.n_tok - t0);

    for (uint e = tid; e < qr * hd; e += 128u) {
        const uint r = e / hd, d = e % hd, j = r / p.group;
        qs[e] = j < n_tok_here ? q[p.q_off + (t0 + j) * p.q_stride + (kvh * p.group + r % p.group) * hd + d] : 0.0;
    }
    if (tid < p.tq) {
        tok_pos[tid] = tid < n_tok_here ? arena[p.tok_pos_off + t0 + tid] : -1;
        tok_seq[tid] = tid < n_tok_here ? uint(arena[p.tok_seq_off + t0 + tid]) : 0u;
    }
    const float NEG_INF = -1.0 / 0.0;
    if (tid < qr) {
        row_max[tid] = NEG_INF;
        row_sum[tid] = 0.0;
    }
    // Output elements e = tid + 128 j of the QR x head_dim block, j < 16 (QR * head_dim <= 2048).
    float acc[16];
    for (uint j = 0u; j < 16u; ++j) acc[j] = 0.0;

    for (uint c0 = 0u; c0 < p.n_scan; c0 += kt) {
        barrier();  // the previous tile's reads of shared memory are done (and the setup above)
        if (tid < kt) {
            uint m = 0u;
            const uint c = c0 + tid;
            if (c < p.n_scan) {
                const int cp = arena[p.cell_pos_off + c];
                const uint s0 = uint(arena[p.cell_seqs_off + 2u * c]), s1 = uint(arena[p.cell_seqs_off + 2u * c + 1u]);
                for (uint j = 0u; j < n_tok_here; ++j) {
                    const uint s = tok_seq[j];
                    if (cp >= 0 && cp <= tok_pos[j] && (((s < 32u ? s0 : s1) >> (s & 31u)) & 1u) != 0u) m |= 1u << j;
                }
            }
            vis[tid] = m;
        }
        barrier();
        uint any = 0u;
        for (uint c = 0u; c < kt; ++c) any |= vis[c];
        if (any == 0u) continue;  // no row sees this tile: uniform across the workgroup

        for (uint e = tid; e < kt * cell_words; e += 128u) {
            const uint c = e / cell_words, w = e % cell_words;
            const bool seen = vis[c] != 0u;  // 0 past n_scan too
            const uint g = (c0 + c) * row_words + kv_word_off + w;
            ks[e] = seen ? kw[g] : 0u;
            vs[e] = seen ? vw[g] : 0u;  // never a stale NaN times a zero weight
        }
        barrier();
        for (uint e = tid; e < qr * kt; e += 128u) {
            const uint r = e / kt, c = e % kt;
            float s = NEG_INF;
            if (((vis[c] >> (r / p.group)) & 1u) != 0u) {
                float dot = 0.0;
                for (uint d = 0u; d < hd; ++d) dot += qs[r * hd + d] * cache_at(c * cell_words, d, false);
                s = dot * p.scale;
            }
            pr[e] = s;
        }
        barrier();
        if (tid < qr) {
            const uint r = tid;
            float mx = row_max[r];
            for (uint c = 0u; c < kt; ++c) mx = max(mx, pr[r * kt + c]);
            float sum = 0.0, alpha = 1.0;
            if (mx != NEG_INF) {
                alpha = row_max[r] == NEG_INF ? 0.0 : exp(row_max[r] - mx);
                for (uint c = 0u; c < kt; ++c) {
                    const float s = pr[r * kt + c];
                    const float e = s == NEG_INF ? 0.0 : exp(s - mx);
                    pr[r * kt + c] = e;
                    sum += e;
                }
            } else {
                for (uint c = 0u; c < kt; ++c) pr[r * kt + c] = 0.0;
            }
            row_max[r] = mx;
            row_sum[r] = row_sum[r] * alpha + sum;
            row_scale[r] = alpha;
        }
        barrier();
        for (uint j = 0u; j < 16u; ++j) {
            const uint e = tid + 128u * j;
            if (e >= qr * hd) break;
            const uint r = e / hd, d = e % hd;
            float a = acc[j] * row_scale[r];
            for (uint c = 0u; c < kt; ++c) {
                const float w = pr[r * kt + c];
                if (w != 0.0) a += w * cache_at(c * cell_words, d, true);
            }
            acc[j] = a;
        }
    }
    barrier();  // row_sum of the last tile
    for (uint j = 0u; j < 16u; ++j) {
        const uint e = tid + 128u * j;
        if (e >= qr * hd) break;
        const uint r = e / hd, d = e % hd, t = r / p.group;
        if (t >= n_tok_here) continue;
        const float l = row_sum[r];
        outv[p.o_off + (t0 + t) * p.o_stride + (kvh * p.group + r % p.group) * hd + d] = l > 0.0 ? acc[j] / l : 0.0;
    }
}
