// Row elements by vec4 where the row allows it. A shader declares a buffer
// twice (float buf[] and vec4 buf4[] on one binding) and defines its loaders
// and storers with these macros. With vec (the row's offset a whole number of
// vec4s: the caller checks its offsets and strides once) an element range
// [i, i + 4) inside the row moves as one vec4; the last vec4 of a row whose
// length n is not a multiple of 4, or any vec4 of an unaligned row, goes
// element by element, and a load gives zeros past n. The two views of one
// binding alias, so these buffers are never declared restrict. The including
// shader enables GL_EXT_control_flow_attributes ([[unroll]]).

// vec4 name(uint base, uint i, uint n, bool vec): elements base + i .. base + i + 3.
#define DEFINE_LOAD4(name, buf, buf4)                                  \
    vec4 name(uint base, uint i, uint n, bool vec) {                   \
        if (vec && i + 4u <= n) return buf4[(base + i) >> 2];          \
        vec4 r = vec4(0.0);                                            \
        [[unroll]] for (uint c = 0u; c < 4u; ++c)                      \
            if (i + c < n) r[c] = buf[base + i + c];                   \
        return r;                                                      \
    }

// void name(uint base, uint i, uint n, bool vec, vec4 v): the elements below n.
#define DEFINE_STORE4(name, buf, buf4)                                 \
    void name(uint base, uint i, uint n, bool vec, vec4 v) {           \
        if (vec && i + 4u <= n) {                                      \
            buf4[(base + i) >> 2] = v;                                 \
            return;                                                    \
        }                                                              \
        [[unroll]] for (uint c = 0u; c < 4u; ++c)                      \
            if (i + c < n) buf[base + i + c] = v[c];                   \
    }
