// The rotation of one rope pair (x0, x1) by the angle with cosine c and sine s.
// precise: no fused multiply-adds, so rope.comp and rope_kv_store.comp (and
// every driver) give the same bits.
vec2 rope_rotate(float x0, float x1, float c, float s) {
    precise vec2 r = vec2(x0 * c - x1 * s, x0 * s + x1 * c);
    return r;
}
