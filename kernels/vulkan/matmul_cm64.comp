#version 450
// kiln:per-weight-type
// The prompt-batch matmul on cooperative matrices, tiles of 128 rows x 64
// tokens with bounds-checked stores, for batches of 5..64 tokens (where
// 128-token tiles would be half empty); matmul_cm.glsl says how.
#extension GL_GOOGLE_include_directive : require
#define BN 64u
#define CUT_TILES 1
#include "matmul_cm.glsl"
