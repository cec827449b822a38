// The matrix-vector product of matvec.comp: y[t, o] =
// sum_i x[t, i] * W[o, i] for a few tokens (decode: 1..NT), where the weights
// are read once and every byte of them counts. Each workgroup takes NROWS
// output rows; its invocations walk the rows' blocks in parts
// (matvec_parts.glsl), so neighbouring invocations read neighbouring words of
// one row, each part decoded once and used for every token. Activations are
// read as vec4 (their offsets and strides are whole vec4s: the backend checks).
// matmul.comp serves larger batches.
//
// With USE_INT_DOT the 32-element formats take 8-bit integer dot products
// against activations quantized to q8 blocks (q8_act.glsl, binding 3):
// four multiply-adds per instruction and a quarter of the activation bytes.
//
// The including shader declares the push constants p (n_in, n_tok,
// w_row_bytes, x_off, x_stride, q_stride) and void mv_store(uint i, float v),
// which writes element i of the output (from its start) of this workgroup.
#include "dequant.glsl"
#include "matvec_parts.glsl"

#define WG 64u
#define NROWS 2u  // kMatvecRows in vulkan_backend.cpp
#define NT 4u     // kMatvecMaxTokens in vulkan_backend.cpp
layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
#ifdef USE_INT_DOT
layout(std430, binding = 3) readonly buffer QBuf4 { uvec4 qa4[]; };
layout(std430, binding = 3) readonly buffer QBuf2 { vec2 qa2[]; };
#endif

shared float red[NROWS * NT][WG];

// Rows o0 .. o0 + NROWS - 1 of a weight of n_out rows; y[t, o] goes to mv_store(t * y_stride + o).
void matvec_rows(const uint o0, const uint n_out, const uint y_stride) {
    const uint tid = gl_LocalInvocationID.x;
    // The last workgroup of an odd n_out reads its last row twice and writes it once.
    uint row[NROWS];
    for (uint r = 0u; r < NROWS; ++r) row[r] = min(o0 + r, n_out - 1u) * p.w_row_bytes;

    float acc[NROWS][NT];
    for (uint r = 0u; r < NROWS; ++r)
        for (uint t = 0u; t < NT; ++t) acc[r][t] = 0.0;

    const uint n_blocks = p.n_in / MV_BLOCK;
#ifdef USE_INT_DOT
    for (uint blk = tid; blk < n_blocks; blk += WG) {
        uint q[NROWS][8];
        vec2 dm[NROWS];
        for (uint r = 0u; r < NROWS; ++r) mv_block_q8(row[r] + blk * BLOCK_BYTES, q[r], dm[r]);
        for (uint t = 0u; t < NT; ++t) {
            if (t >= p.n_tok) break;
            const uint qt = t * p.q_stride;
            const uvec4 xa = qa4[qt / 4u + blk * 2u], xb = qa4[qt / 4u + blk * 2u + 1u];
            const vec2 ds = qa2[(qt + p.n_in / 4u) / 2u + blk];  // d_x, d_x * sum(q_x)
            for (uint r = 0u; r < NROWS; ++r) {
                const int s = sdot(q[r][0], xa.x) + sdot(q[r][1], xa.y) + sdot(q[r][2], xa.z) + sdot(q[r][3], xa.w) +
                              sdot(q[r][4], xb.x) + sdot(q[r][5], xb.y) + sdot(q[r][6], xb.z) + sdot(q[r][7], xb.w);
                acc[r][t] += dm[r].x * ds.x * float(s) + dm[r].y * ds.y;
            }
        }
    }
#else
    for (uint u = tid; u < n_blocks * MV_PARTS; u += WG) {
        const uint blk = u / MV_PARTS, pi = u % MV_PARTS;
        vec4 w[NROWS][MV_NV];
        for (uint r = 0u; r < NROWS; ++r) mv_part(row[r] + blk * MV_BLOCK_BYTES, pi, w[r]);
        const uint xe = (p.x_off + blk * MV_BLOCK) / 4u;
        for (uint t = 0u; t < NT; ++t) {
            if (t >= p.n_tok) break;
            const uint xt = xe + t * (p.x_stride / 4u);
            for (uint j = 0u; j < uint(MV_NV); ++j) {
                const vec4 xv = x4[xt + mv_x(pi, j) / 4u];
                for (uint r = 0u; r < NROWS; ++r) acc[r][t] += dot(w[r][j], xv);
            }
        }
    }
#endif
#ifdef MV_FLOAT_TAIL
    // Float rows: the last n_in % 8 elements one at a time.
    for (uint i = n_blocks * MV_BLOCK + tid; i < p.n_in; i += WG)
        for (uint r = 0u; r < NROWS; ++r) {
            const float wv = dq(row[r] + i * BLOCK_BYTES, 0u);
            for (uint t = 0u; t < NT; ++t)
                if (t < p.n_tok) acc[r][t] += wv * x[p.x_off + t * p.x_stride + i];
        }
#endif

    // Sum each (row, token) over the workgroup; invocation r * NT + t writes it.
#ifdef USE_SUBGROUP
    for (uint r = 0u; r < NROWS; ++r)
        for (uint t = 0u; t < NT; ++t) {
            const float s = subgroupAdd(acc[r][t]);
            if (subgroupElect()) red[r * NT + t][gl_SubgroupID] = s;
        }
    barrier();
    const uint n_partial = gl_NumSubgroups;
#else
    for (uint r = 0u; r < NROWS; ++r)
        for (uint t = 0u; t < NT; ++t) red[r * NT + t][tid] = acc[r][t];
    barrier();
    for (uint s = WG / 2u; s > 1u; s >>= 1) {
        if (tid < s)
            for (uint k = 0u; k < NROWS * NT; ++k) red[k][tid] += red[k][tid + s];
        barrier();
    }
    const uint n_partial = 2u;
#endif
    if (tid < NROWS * NT) {
        const uint r = tid / NT, t = tid % NT;
        float s = 0.0;
        for (uint g = 0u; g < n_partial; ++g) s += red[tid][g];
        if (t < p.n_tok && o0 + r < n_out) mv_store(t * y_stride + o0 + r, s);
    }
}
