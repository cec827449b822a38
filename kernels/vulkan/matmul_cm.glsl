// y[t, o] = sum_i x[t, i] * W[o, i], the prompt-batch matmul on cooperative
// matrices (VK_NV_cooperative_matrix, 16x8x16 f16 x f16 + f32 in subgroups of
// 32; vulkan_coopmat.cpp checks the device). matmul_cm.comp (BN 128, whole
// tiles), matmul_cm_cut.comp (BN 128, tiles cut by n_out or n_tok) and
// matmul_cm64.comp (BN 64, cut) include this with BN (and CUT_TILES) defined.
//
// A workgroup of 256 takes 128 output rows x BN tokens, BK = 64 elements of i
// per step; its 8 subgroups, 2 along rows x 4 along tokens, each multiply a
// 64-row x BN/4-token piece as 4 x BN/32 accumulators of 16 x 8 in f32.
// One shared buffer holds the step's f16 tiles (rows with i contiguous); a step
// is: barrier, registers -> shared, barrier, the next step's global loads into
// registers, then the products, so the loads fly while the tensor cores work.
// Invocation tid owns the 32-element chunk (tid % 2) of weight row tid / 2 (a
// whole block of the 32-element formats: a Q4_0 block is five aligned word
// loads, no branches) and BN / 32 16-byte words of activations. Weights are
// rounded to f16 on the way in; activations come already rounded (to_f16.comp,
// once per input, rows zero-padded to a multiple of BK). f16 rounding: relative
// error 2^-11 per operand, as llama.cpp's f16 path; activations past 65504
// overflow. glslc here (glslang 11) has GL_NV_cooperative_matrix, not the KHR one.
//
// What NVIDIA's compiler (driver 580, H200) needs, measured on the products of a
// 7B Q4_0 pp512 pass (KILN_VK_PROFILE mean; kernels/vulkan/NOTES.md has the table):
// the tiles in a plain float16_t array written half by half (the matrices' own
// type; a uvec4 array or float16_t aliased onto one: 2.3x slower), every fixed
// loop unrolled, and no staging path in the whole-tile shader (2.3x slower with
// it). This BK 64 single-buffer form (the CUDA backend's matmul_mma structure):
// 267 us a product, against 413 for BK 32 with two buffers and one barrier.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require
#include "dequant.glsl"
#include "dequant4.glsl"

#define BM 128u
#define BK 64u
#define WG 256u
#define LD 72u               // halves per tile row: BK + 8 staggers the banks, keeps rows on 16 bytes
#define SG_ROWS 64u          // rows per subgroup (two subgroups along rows)
#define SG_TOKS (BN / 4u)    // tokens per subgroup (four along tokens)
#define TM (SG_ROWS / 16u)   // accumulators along rows
#define TN (SG_TOKS / 8u)    // accumulators along tokens
#define XL (BN * 8u / WG)    // activation words each invocation moves per step

#define MatA fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define MatB fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define MatC fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>

layout(local_size_x = 256) in;
layout(std430, binding = 1) readonly buffer X16 { uvec4 x16[]; };
layout(std430, binding = 2) buffer YBuf { float y[]; };  // not writeonly: coopMatStoreNV
layout(push_constant) uniform Params {
    uint n_in, n_out, n_tok, w_row_bytes;
    uint stride16;  // uvec4s per token row of x16 (a multiple of BK / 8)
    uint y_off, y_stride;
    uint o_first, t_first;  // the first tile's row and token (the backend splits whole tiles from cut ones)
} p;

// Row r < BM of the weight tile is sm[r * LD ..], token t's row sm[(BM + t) * LD ..].
shared float16_t sm[(BM + BN) * LD];
// With CUT_TILES (matmul_cm_cut.comp, matmul_cm64.comp: tiles cut by n_out or
// n_tok) results are staged here, one 16 x 8 matrix per subgroup at a time;
// without, the backend dispatches whole tiles only and they go straight to y.
#ifdef CUT_TILES
shared float staged[8u * 128u];
#endif

uint wq[16];     // the next step's 32 weights of this invocation, as f16 pairs
uvec4 xr[XL];    // and its activation words

#if defined(WTYPE_Q4_0)
// The block at byte blk (even): its five aligned words hold d and the 16 quant bytes.
void load_chunk(uint blk) {
    const uint base = blk >> 2;
    uint W[5];
    [[unroll]] for (uint k = 0u; k < 5u; ++k) W[k] = w_words[base + k];
    const bool al = (blk & 2u) == 0u;
    // Nibble n under the exponent of 1024 is the half 1024 + n: one subtraction
    // gives n - 8 exactly, one f16 product the weight, rounded once as a float
    // product rounded to f16 would be (pp512 7013 against 6807 for float math).
    const float16_t d16 = unpackFloat2x16(al ? W[0] : W[0] >> 16).x;
    const f16vec2 dd = f16vec2(d16), bias = f16vec2(float16_t(1032.0));
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        const uint q = al ? (W[k] >> 16) | (W[k + 1u] << 16) : W[k + 1u];
        // bytes 4k..4k+3: low nibbles are elements 4k.., high nibbles 16 + 4k..
        const uint lo01 = (q & 0x000F000Fu) | 0x64006400u;          // bytes 0, 2 -> elements 4k, 4k+2
        const uint lo13 = ((q >> 8) & 0x000F000Fu) | 0x64006400u;   // bytes 1, 3 -> elements 4k+1, 4k+3
        const uint hi01 = ((q >> 4) & 0x000F000Fu) | 0x64006400u;
        const uint hi13 = ((q >> 12) & 0x000F000Fu) | 0x64006400u;
        const f16vec2 a = (unpackFloat2x16(lo01) - bias) * dd, b = (unpackFloat2x16(lo13) - bias) * dd;
        const f16vec2 c = (unpackFloat2x16(hi01) - bias) * dd, e = (unpackFloat2x16(hi13) - bias) * dd;
        wq[2u * k] = packFloat2x16(f16vec2(a.x, b.x));
        wq[2u * k + 1u] = packFloat2x16(f16vec2(a.y, b.y));
        wq[8u + 2u * k] = packFloat2x16(f16vec2(c.x, e.x));
        wq[8u + 2u * k + 1u] = packFloat2x16(f16vec2(c.y, e.y));
    }
}
#endif

// W[o, i .. i + 31] into wq; zeros past n_in (a 32-element block past the end
// of a row of 64k + 32, the tail of a float row).
void load_weights(uint o, uint i) {
    const uint row = o * p.w_row_bytes;
#if defined(WTYPE_Q4_0)
    if (i < p.n_in) {
        load_chunk(row + (i / 32u) * BLOCK_BYTES);
        return;
    }
    [[unroll]] for (uint c = 0u; c < 16u; ++c) wq[c] = 0u;
#else
    [[unroll]] for (uint c = 0u; c < 8u; ++c) {
        const uint e = i + 4u * c;
        vec4 v;
        if (e + 4u <= p.n_in) {
            v = dq4(row + (e / BLOCK_SIZE) * BLOCK_BYTES, e % BLOCK_SIZE);
        } else {  // only float rows end inside a group of four
            [[unroll]] for (uint j = 0u; j < 4u; ++j) v[j] = e + j < p.n_in ? dq(row + (e + j) * BLOCK_BYTES, 0u) : 0.0;
        }
        wq[2u * c] = packHalf2x16(v.xy);
        wq[2u * c + 1u] = packHalf2x16(v.zw);
    }
#endif
}

void load_step(uint o0, uint t0, uint k0) {
    const uint tid = gl_LocalInvocationID.x, o = o0 + (tid >> 1);
#ifdef CUT_TILES
    if (o < p.n_out) {
        load_weights(o, k0 + 32u * (tid & 1u));
    } else {
        [[unroll]] for (uint c = 0u; c < 16u; ++c) wq[c] = 0u;
    }
#else
    load_weights(o, k0 + 32u * (tid & 1u));
#endif
    [[unroll]] for (uint l = 0u; l < XL; ++l) {
        const uint idx = tid + l * WG, t = t0 + (idx >> 3), at = t * p.stride16 + k0 / 8u + (idx & 7u);
#ifdef CUT_TILES
        xr[l] = t < p.n_tok ? x16[at] : uvec4(0u);
#else
        xr[l] = x16[at];
#endif
    }
}

void put_pair(uint at, uint v) {
    const f16vec2 h = unpackFloat2x16(v);
    sm[at] = h.x;
    sm[at + 1u] = h.y;
}

void store_step() {
    const uint tid = gl_LocalInvocationID.x;
    const uint w_at = (tid >> 1) * LD + 32u * (tid & 1u);
    [[unroll]] for (uint c = 0u; c < 16u; ++c) put_pair(w_at + 2u * c, wq[c]);
    [[unroll]] for (uint l = 0u; l < XL; ++l) {
        const uint idx = tid + l * WG, x_at = (BM + (idx >> 3)) * LD + 8u * (idx & 7u);
        [[unroll]] for (uint c = 0u; c < 4u; ++c) put_pair(x_at + 2u * c, xr[l][c]);
    }
}

void main() {
    const uint o0 = p.o_first + (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * BM;
    if (o0 >= p.n_out) return;  // a spare group of the x*y split: uniform across the workgroup
    const uint t0 = p.t_first + gl_WorkGroupID.z * BN;
    const uint m0 = (gl_SubgroupID & 1u) * SG_ROWS, n0 = (gl_SubgroupID >> 1) * SG_TOKS;

    MatC acc[TM][TN];
    [[unroll]] for (uint m = 0u; m < TM; ++m)
        [[unroll]] for (uint n = 0u; n < TN; ++n) acc[m][n] = MatC(0.0);

    const uint n_steps = (p.n_in + BK - 1u) / BK;
    load_step(o0, t0, 0u);
    for (uint s = 0u; s < n_steps; ++s) {
        barrier();  // the previous step's products have read the tiles
        store_step();
        barrier();
        if (s + 1u < n_steps) load_step(o0, t0, (s + 1u) * BK);  // uniform
        [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
            // A: rows x i, row-major; B: i x tokens, column n = token n's row, so column-major.
            MatA a[TM];
            MatB b[TN];
            [[unroll]] for (uint m = 0u; m < TM; ++m) coopMatLoadNV(a[m], sm, (m0 + 16u * m) * LD + kk, LD, false);
            [[unroll]] for (uint n = 0u; n < TN; ++n) coopMatLoadNV(b[n], sm, (BM + n0 + 8u * n) * LD + kk, LD, true);
            [[unroll]] for (uint m = 0u; m < TM; ++m)
                [[unroll]] for (uint n = 0u; n < TN; ++n) acc[m][n] = coopMatMulAddNV(a[m], b[n], acc[m][n]);
        }
    }

    // y row t holds token t: a 16-row x 8-token result is column-major there.
    const uint o_sg = o0 + m0, t_sg = t0 + n0;
#ifndef CUT_TILES
    [[unroll]] for (uint m = 0u; m < TM; ++m)
        [[unroll]] for (uint n = 0u; n < TN; ++n)
            coopMatStoreNV(acc[m][n], y, p.y_off + (t_sg + 8u * n) * p.y_stride + o_sg + 16u * m, p.y_stride, true);
#else
    // Through shared memory, so the tails are plain bounds checks.
    const uint st = gl_SubgroupID * 128u, lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint m = 0u; m < TM; ++m)
        [[unroll]] for (uint n = 0u; n < TN; ++n) {
            coopMatStoreNV(acc[m][n], staged, st, 16u, true);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint q = lane; q < 128u; q += 32u) {
                const uint t = t_sg + 8u * n + q / 16u, o = o_sg + 16u * m + q % 16u;
                if (t < p.n_tok && o < p.n_out) y[p.y_off + t * p.y_stride + o] = staged[st + q];
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();
        }
#endif
}
