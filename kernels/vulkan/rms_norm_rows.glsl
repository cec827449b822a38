// The body rms_norm.comp and add_rms_norm.comp share: out = x * scale * weight
// with scale = 1 / sqrt(mean(x^2) + eps), one workgroup of RMS_WG per row, and
// with p.q_stride != 0 (decode rows that feed an integer-dot matvec,
// n_cols % 32 == 0) the q8 copy of out too (q8_act.glsl), which saves the
// matvec its quantize_q8 dispatch.
//
// Invocation i owns the 32-element blocks i, i + RMS_WG, ... of the row. It
// loads its first block (and that block's weights) into registers, every load
// issued before any store, so a row of up to 32 * RMS_WG = 8192 elements costs
// one round of loads, one reduction and one round of stores from registers
// (the rows used to take a load after every store: 32 + 64 round trips in a
// row). Longer rows sum their further blocks in the same pass and read them
// again after the reduction. The per-invocation sums are `precise` (no fused
// multiply-adds) so both shaders reduce the same floats to the same bits.
//
// The including shader declares p (n_cols, eps, q_stride), the buffers w/w4,
// x/x4, outv/outv4 (vec4_rows.glsl) and row_block() below.
#include "vec4_rows.glsl"
#define RMS_WG 256u
layout(local_size_x = 256) in;
shared float red[RMS_WG];

DEFINE_LOAD4(w_load4, w, w4)
DEFINE_LOAD4(x_load4, x, x4)
DEFINE_STORE4(out_store4, outv, outv4)

// Block blk of row t of the input as the norm sees it (add_rms_norm: x + b,
// also stored into x), every load issued before any store.
void row_block(uint t, uint blk, bool vec, out vec4 v[8]);

float block_sum_sq(const vec4 v[8]) {
    precise float s = 0.0;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) s += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    return s;
}

// 1 / sqrt(mean of squares + eps) from each invocation's sum of squares.
float rms_scale(float ss) {
#ifdef USE_SUBGROUP
    const float s = subgroupAdd(ss);
    if (subgroupElect()) red[gl_SubgroupID] = s;
    barrier();
    precise float total = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; ++i) total += red[i];
#else
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = ss;
    barrier();
    [[unroll]] for (uint s = RMS_WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    const float total = red[0];
#endif
    return 1.0 / sqrt(total / float(p.n_cols) + p.eps);
}

// Block blk (its x in v, its weights in g) to row orow of outv and token t of the q8 copy.
void rms_write_block(uint t, uint orow, uint blk, float scale, vec4 v[8], const vec4 g[8], bool vec) {
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        v[k] = v[k] * scale * g[k];
        out_store4(orow, blk * 32u + 4u * k, p.n_cols, vec, v[k]);
    }
    if (p.q_stride != 0u) q8_store_block(t * p.q_stride, p.n_cols, blk, v);
}

// Row t: x at element xr, out at orow; vec: both rows (and b's) start on whole vec4s.
void rms_row(uint t, uint xr, uint orow, bool vec) {
    const uint tid = gl_LocalInvocationID.x, n_blocks = (p.n_cols + 31u) / 32u;
    vec4 v[8], g[8];
    precise float ss = 0.0;
    if (tid < n_blocks) {
        // The weights start their buffer: always whole vec4s.
        [[unroll]] for (uint k = 0u; k < 8u; ++k) g[k] = w_load4(0u, tid * 32u + 4u * k, p.n_cols, true);
        row_block(t, tid, vec, v);
        ss = block_sum_sq(v);
    }
    for (uint blk = tid + RMS_WG; blk < n_blocks; blk += RMS_WG) {
        vec4 u[8];
        row_block(t, blk, vec, u);
        ss += block_sum_sq(u);
    }
    const float scale = rms_scale(ss);
    if (tid < n_blocks) rms_write_block(t, orow, tid, scale, v, g, vec);
    // Rows past 8192 elements: this invocation's further blocks again (x holds
    // them as row_block left them; an in-place norm writes a block only after
    // reading it, and every block has one owner).
    for (uint blk = tid + RMS_WG; blk < n_blocks; blk += RMS_WG) {
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            g[k] = w_load4(0u, blk * 32u + 4u * k, p.n_cols, true);
            v[k] = x_load4(xr, blk * 32u + 4u * k, p.n_cols, vec);
        }
        rms_write_block(t, orow, blk, scale, v, g, vec);
    }
}
