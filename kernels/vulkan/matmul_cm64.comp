#version 450
// kiln:per-weight-type
// The prompt-batch matmul on cooperative matrices, tiles of 128 rows x 64
// tokens, whole tiles only (matmul_cm64_cut.comp takes the cut ones);
// matmul_cm.glsl says how.
#extension GL_GOOGLE_include_directive : require
#define BN 64u
#include "matmul_cm.glsl"
