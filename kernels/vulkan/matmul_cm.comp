#version 450
// kiln:per-weight-type
// The prompt-batch matmul on cooperative matrices (VK_NV_cooperative_matrix;
// picked at run time where the device lists 16x8x16 f16 x f16 + f32, see
// vulkan_coopmat.cpp). Same tiles and loaders as matmul.comp (matmul_tiles.glsl),
// stored as f16 in shared memory; each of the four subgroups of 32 multiplies
// a 32-row x 32-token quarter of the 64 x 64 tile as 2 x 4 accumulators of
// 16 x 8, in f32. Weights and activations are rounded to f16 (relative error
// 2^-11 each, as llama.cpp's f16 path; activations past 65504 would overflow).
// glslc here (glslang 11) has GL_NV_cooperative_matrix but not the KHR one.
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "matmul_tiles.glsl"

#define BK 32u
#define BK4 (BK / 4u)
#define CM_M 16u
#define CM_N 8u
#define CM_K 16u
// Row strides of the shared tiles, in elements: 80 and 272 bytes keep every
// matrix start 16-byte aligned and spread neighbouring rows over the banks.
#define SA (BK + 8u)
#define SC (BM + 4u)

#define MatA fcoopmatNV<16, gl_ScopeSubgroup, CM_M, CM_K>
#define MatB fcoopmatNV<16, gl_ScopeSubgroup, CM_K, CM_N>
#define MatC fcoopmatNV<32, gl_ScopeSubgroup, CM_M, CM_N>

shared float16_t As[BM * SA];  // As[r * SA + k] = W[o0 + r, k0 + k]
shared float16_t Bs[BN * SA];  // Bs[t * SA + k] = x[t0 + t, k0 + k]
shared float Cs[BN * SC];      // Cs[t * SC + r] = y[t0 + t, o0 + r]

void main() {
    const uint o0 = row_tile() * BM;
    if (o0 >= p.n_out) return;  // a spare group of the x*y split: uniform across the workgroup
    const uint t0 = gl_WorkGroupID.z * BN;
    const uint tid = gl_LocalInvocationID.x;
    const uint m0 = (gl_SubgroupID & 1u) * 32u, n0 = (gl_SubgroupID >> 1) * 32u;

    MatC acc[2][4];
    for (uint m = 0u; m < 2u; ++m)
        for (uint n = 0u; n < 4u; ++n) acc[m][n] = MatC(0.0);

    for (uint k0 = 0u; k0 < p.n_in; k0 += BK) {
        for (uint l = 0u; l < BM * BK4 / WG; ++l) {
            const uint idx = tid + l * WG, r = idx / BK4, q = idx % BK4;
            const vec4 v = load_w4(o0 + r, k0 + 4u * q);
            for (uint c = 0u; c < 4u; ++c) As[r * SA + 4u * q + c] = float16_t(v[c]);
        }
        for (uint l = 0u; l < BN * BK4 / WG; ++l) {
            const uint idx = tid + l * WG, r = idx / BK4, q = idx % BK4;
            const vec4 v = load_x4(t0 + r, k0 + 4u * q);
            for (uint c = 0u; c < 4u; ++c) Bs[r * SA + 4u * q + c] = float16_t(v[c]);
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk += CM_K) {
            // A is rows x k, row-major; B is k x tokens: column n is token n's row, so column-major.
            MatA a[2];
            MatB b[4];
            for (uint m = 0u; m < 2u; ++m) coopMatLoadNV(a[m], As, (m0 + CM_M * m) * SA + kk, SA, false);
            for (uint n = 0u; n < 4u; ++n) coopMatLoadNV(b[n], Bs, (n0 + CM_N * n) * SA + kk, SA, true);
            for (uint m = 0u; m < 2u; ++m)
                for (uint n = 0u; n < 4u; ++n) acc[m][n] = coopMatMulAddNV(a[m], b[n], acc[m][n]);
        }
        barrier();
    }

    // Through shared memory, so the tails in rows and tokens are plain bounds checks.
    for (uint m = 0u; m < 2u; ++m)
        for (uint n = 0u; n < 4u; ++n) coopMatStoreNV(acc[m][n], Cs, (n0 + CM_N * n) * SC + m0 + CM_M * m, SC, true);
    barrier();
    for (uint s = tid; s < BM * BN; s += WG) {
        const uint r = s % BM, t = s / BM;
        if (o0 + r < p.n_out && t0 + t < p.n_tok) y[p.y_off + (t0 + t) * p.y_stride + o0 + r] = Cs[t * SC + r];
    }
}
