#version 450
// Prompt attention on cooperative matrices for heads of 128 dimensions (attention_cm.glsl says how).
#extension GL_GOOGLE_include_directive : require
#define HEAD_DIM 128u
#include "attention_cm.glsl"
