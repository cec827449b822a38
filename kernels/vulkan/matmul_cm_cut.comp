#version 450
// kiln:per-weight-type
// The prompt-batch matmul on cooperative matrices for tiles of 128 rows x 128
// tokens cut by the end of the rows or the tokens (bounds-checked stores);
// matmul_cm.comp takes the whole tiles. matmul_cm.glsl says how.
#extension GL_GOOGLE_include_directive : require
#define BN 128u
#define CUT_TILES 1
#include "matmul_cm.glsl"
