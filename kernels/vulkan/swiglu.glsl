// silu(g) * u: the one spelling swiglu.comp and swiglu_q8.comp share (so both give the same bits).
float silu_mul(float g, float u) { return g / (1.0 + exp(-g)) * u; }
