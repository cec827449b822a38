#version 450
// kiln:subgroup-variant
// attention_decode.glsl over rows off 16 bytes (an even head_dim that is not
// a multiple of 8 halves or 4 floats): keys and values element by element
// into the same slots, the rest of the scheme unchanged.
#define ROWS_BY_ELEMENT
#extension GL_GOOGLE_include_directive : require
#include "attention_decode.glsl"
