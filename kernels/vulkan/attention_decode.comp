#version 450
// kiln:subgroup-variant
// attention_decode.glsl over rows on 16 bytes (head_dim a multiple of 8
// halves or 4 floats, as every usual head size): keys and values by 16-byte loads.
#extension GL_GOOGLE_include_directive : require
#include "attention_decode.glsl"
