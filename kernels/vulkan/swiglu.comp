#version 450
// out = silu(gate) * up, elementwise (a = gate, b = up).
#extension GL_GOOGLE_include_directive : require
#include "elementwise.glsl"
#include "swiglu.glsl"
float op(float g, float u) { return silu_mul(g, u); }
