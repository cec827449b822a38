// The q8 copy of one output head, which attention_decode.glsl (one split) or
// attention_merge.comp (several) writes beside the output so that the output
// projection's integer-dot matvec skips its quantize_q8 dispatch. The including
// shader declares p (head_dim, q8_stride), shared float o_sh[] holding the
// head, and includes q8_act.glsl; head_dim % 32 == 0 (the backend checks), so
// the head is whole q8 blocks of its token's row of n_head * head_dim.

// The q8 copy of output head h of token t (in o_sh): its head_dim / 32 blocks.
void q8_store_head(uint h, uint t) {
    const uint tid = gl_LocalInvocationID.x;
    if (tid >= p.head_dim / 32u) return;
    vec4 v[8];
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        const uint e = tid * 32u + 4u * k;
        v[k] = vec4(o_sh[e], o_sh[e + 1u], o_sh[e + 2u], o_sh[e + 3u]);
    }
    q8_store_block(t * p.q8_stride, gl_NumWorkGroups.x * p.head_dim, h * (p.head_dim / 32u) + tid, v);
}
