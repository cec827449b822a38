// The second half of rms_norm.comp and add_rms_norm.comp, one workgroup of 128
// per row: the sum of squares reduced, then out = x * scale * weight written,
// and with p.q_stride != 0 (decode rows that feed an integer-dot matvec,
// n_cols % 32 == 0) written again as q8 blocks (q8_act.glsl), which saves the
// matvec its quantize_q8 dispatch. The including shader declares w, x, outv
// and p (n_cols, eps, q_stride).
shared float red[128];

float rms_scale(float ss) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = ss;
    barrier();
    for (uint s = 64u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    return 1.0 / sqrt(red[0] / float(p.n_cols) + p.eps);
}

// Row xr of x (already summed by this invocation for its own elements) to row
// orow of outv and token t of the q8 copy.
void rms_write(uint xr, uint orow, uint t, float scale) {
    const uint tid = gl_LocalInvocationID.x;
    if (p.q_stride == 0u) {
        for (uint i = tid; i < p.n_cols; i += 128u) outv[orow + i] = x[xr + i] * scale * w[i];
        return;
    }
    for (uint blk = tid; blk < p.n_cols / 32u; blk += 128u) {
        vec4 v[8];
        for (uint k = 0u; k < 8u; ++k)
            for (uint c = 0u; c < 4u; ++c) {
                const uint i = blk * 32u + 4u * k + c;
                v[k][c] = x[xr + i] * scale * w[i];
                outv[orow + i] = v[k][c];
            }
        q8_store_block(t * p.q_stride, p.n_cols, blk, v);
    }
}
