#version 450
// out = a + b, elementwise.
#extension GL_GOOGLE_include_directive : require
#include "elementwise.glsl"
float op(float av, float bv) { return av + bv; }
