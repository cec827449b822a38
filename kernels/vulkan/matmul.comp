#version 450
// kiln:per-weight-type
// y[t, o] = sum_i x[t, i] * W[o, i], the prompt-batch matmul as a tiled GEMM
// in float arithmetic (the path every device has; matmul_cm.comp is the
// cooperative-matrix one). Per step of BK = 32 elements of i, the workgroup
// dequantizes its 64 weight rows four elements at a time (dequant4.glsl) and
// copies its 64 activation rows into shared memory; each of the 128
// invocations then accumulates an 8-row x 4-token register block from them.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "matmul_tiles.glsl"

#define BK 32u
#define TM 8u   // rows per invocation: tx + 8 * m
#define TN 4u   // tokens per invocation: ty + 16 * n
#define BK4 (BK / 4u)

// Tiles with i contiguous, as vec4s: As[r][q] = W[o0 + r, k0 + 4q .. 4q + 3].
// One vec4 of padding per row (36 floats) puts the 8 rows (or 4 tokens) that
// a warp reads at one q on distinct banks, and the 8 vec4s of one row that
// the loaders write too.
shared vec4 As[BM][BK4 + 1u];
shared vec4 Bs[BN][BK4 + 1u];

void main() {
    const uint o0 = row_tile() * BM;
    if (o0 >= p.n_out) return;  // a spare group of the x*y split: uniform across the workgroup
    const uint t0 = gl_WorkGroupID.z * BN;
    const uint tid = gl_LocalInvocationID.x;
    const uint tx = tid % 8u, ty = tid / 8u;

    float acc[TM][TN];
    [[unroll]] for (uint m = 0u; m < TM; ++m)
        [[unroll]] for (uint n = 0u; n < TN; ++n) acc[m][n] = 0.0;

    for (uint k0 = 0u; k0 < p.n_in; k0 += BK) {
        // Eight neighbouring invocations read one row's BK elements: one block
        // of the 32-element formats, a contiguous run of the others.
        [[unroll]] for (uint l = 0u; l < BM * BK4 / WG; ++l) {
            const uint idx = tid + l * WG, r = idx / BK4, q = idx % BK4;
            As[r][q] = load_w4(o0 + r, k0 + 4u * q);
        }
        [[unroll]] for (uint l = 0u; l < BN * BK4 / WG; ++l) {
            const uint idx = tid + l * WG, r = idx / BK4, q = idx % BK4;
            Bs[r][q] = load_x4(t0 + r, k0 + 4u * q);
        }
        barrier();
        [[unroll]] for (uint q = 0u; q < BK4; ++q) {
            vec4 a[TM], b[TN];
            [[unroll]] for (uint m = 0u; m < TM; ++m) a[m] = As[tx + 8u * m][q];
            [[unroll]] for (uint n = 0u; n < TN; ++n) b[n] = Bs[ty + 16u * n][q];
            [[unroll]] for (uint m = 0u; m < TM; ++m)
                [[unroll]] for (uint n = 0u; n < TN; ++n)
                    acc[m][n] = fma(a[m].w, b[n].w, fma(a[m].z, b[n].z, fma(a[m].y, b[n].y, fma(a[m].x, b[n].x, acc[m][n]))));
        }
        barrier();
    }

    [[unroll]] for (uint n = 0u; n < TN; ++n) {
        const uint t = t0 + ty + 16u * n;
        if (t >= p.n_tok) continue;
        [[unroll]] for (uint m = 0u; m < TM; ++m) {
            const uint o = o0 + tx + 8u * m;
            if (o < p.n_out) y[p.y_off + t * p.y_stride + o] = acc[m][n];
        }
    }
}
