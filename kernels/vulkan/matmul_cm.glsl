// y[t, o] = sum_i x[t, i] * W[o, i], the prompt-batch matmul on cooperative
// matrices (VK_NV_cooperative_matrix, 16x8x16 f16 x f16 + f32 in subgroups of
// 32; vulkan_coopmat.cpp checks the device). matmul_cm.comp (BN 128, whole
// tiles), matmul_cm_cut.comp (BN 128, tiles cut by n_out or n_tok) and
// matmul_cm64.comp (BN 64, cut) include this with BN (and CUT_TILES) defined.
//
// A workgroup of 256 takes 128 output rows x BN tokens, BK = 32 elements of i
// per step; its 8 subgroups, 2 along rows x 4 along tokens, each multiply a
// 64-row x BN/4-token piece as 4 x BN/32 accumulators of 16 x 8 in f32.
// Shared memory holds two buffers of the f16 tiles, as 16-byte words (rows
// with i contiguous): while the subgroups multiply one, the next step's words
// are read from global memory into registers and stored into the other, so a
// step ends in one barrier. Weights are dequantized 8 elements at a time
// (two dq4 reads of 32-bit words, dequant4.glsl) and rounded to f16 on the
// way in; activations come already rounded (to_f16.comp, once per input,
// rows zero-padded to a multiple of BK). f16 rounding: relative error 2^-11
// per operand, as llama.cpp's f16 path; activations past 65504 overflow.
// glslc here (glslang 11) has GL_NV_cooperative_matrix but not the KHR one.
//
// What NVIDIA's compiler (driver 580, H200) needs to make this fast, measured on a
// 4096 x 4096 x 512 Q4_0 product: the tiles in a plain float16_t array (the
// matrices' own type; 16-byte words written half by half), and every fixed loop
// unrolled: 412 us. Loading the matrices from a uvec4 array, or from float16_t
// aliased onto it with GL_EXT_shared_memory_block, or leaving the loops rolled:
// 950-970 us.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require
#include "dequant.glsl"
#include "dequant4.glsl"

#define BM 128u
#define BK 32u
#define WG 256u
#define SG_ROWS 64u          // rows per subgroup (two subgroups along rows)
#define SG_TOKS (BN / 4u)    // tokens per subgroup (four along tokens)
#define TM (SG_ROWS / 16u)   // accumulators along rows
#define TN (SG_TOKS / 8u)    // accumulators along tokens
#define XL (BN * 4u / WG)    // activation words each invocation moves per step
// uvec4s per tile row: BK halves are 4, plus one of padding, so the 16-byte
// words of 8 consecutive rows (one matrix load phase) fall on distinct banks.
#define RS 5u
#define TILE ((BM + BN) * RS)  // one buffer: the weight tile, then the activation tile

#define MatA fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define MatB fcoopmatNV<16, gl_ScopeSubgroup, 16, 8>
#define MatC fcoopmatNV<32, gl_ScopeSubgroup, 16, 8>

layout(local_size_x = 256) in;
layout(std430, binding = 1) readonly buffer X16 { uvec4 x16[]; };
layout(std430, binding = 2) buffer YBuf { float y[]; };  // not writeonly: coopMatStoreNV
layout(push_constant) uniform Params {
    uint n_in, n_out, n_tok, w_row_bytes;
    uint stride16;  // uvec4s per token row of x16
    uint y_off, y_stride;
    uint o_first, t_first;  // the first tile's row and token (the backend splits whole tiles from cut ones)
} p;

// Word w (8 halves) of the tiles is sm[8w .. 8w + 7]:
// word b + r * RS + q = W[o0 + r, k0 + 8q .. 8q + 7] (r < BM), and
// word b + (BM + t) * RS + q = x[t0 + t, k0 + 8q .. 8q + 7], b = 0 or TILE.
shared float16_t sm[2u * TILE * 8u];
// With CUT_TILES (matmul_cm_cut.comp, matmul_cm64.comp: tiles cut by n_out or
// n_tok) results are staged here, one 16 x 8 matrix per subgroup at a time;
// without, the backend dispatches whole tiles only and they go straight to y.
// Two shaders rather than one with a branch: the same loop ran 2.3x slower
// (949 vs 413 us) in a shader that also had the staging path.
#ifdef CUT_TILES
shared float staged[8u * 128u];
#endif

void put_word(uint w, uvec4 v) {
    [[unroll]] for (uint c = 0u; c < 4u; ++c) {
        const f16vec2 h = unpackFloat2x16(v[c]);
        sm[8u * w + 2u * c] = h.x;
        sm[8u * w + 2u * c + 1u] = h.y;
    }
}

// W[o, i .. i + 7] as 8 halves, zero past n_out and (float rows) past n_in;
// i < n_in is a multiple of 8, so quantized rows (whole blocks) need no bound in i.
uvec4 w8(uint o, uint i) {
    if (o >= p.n_out) return uvec4(0u);
    const uint row = o * p.w_row_bytes;
    vec4 a, b;
    if (BLOCK_SIZE > 1u || i + 8u <= p.n_in) {
        a = dq4(row + (i / BLOCK_SIZE) * BLOCK_BYTES, i % BLOCK_SIZE);
        b = dq4(row + ((i + 4u) / BLOCK_SIZE) * BLOCK_BYTES, (i + 4u) % BLOCK_SIZE);
    } else {
        [[unroll]] for (uint c = 0u; c < 4u; ++c) {
            a[c] = i + c < p.n_in ? dq(row + (i + c) * BLOCK_BYTES, 0u) : 0.0;
            b[c] = i + 4u + c < p.n_in ? dq(row + (i + 4u + c) * BLOCK_BYTES, 0u) : 0.0;
        }
    }
    return uvec4(packHalf2x16(a.xy), packHalf2x16(a.zw), packHalf2x16(b.xy), packHalf2x16(b.zw));
}

// The next step's words, held in registers while the current step multiplies.
// Invocation tid loads weight row tid / 2, words h and h + 2 (h = tid % 2:
// elements 8h.. and 8h + 16.., which a 32-element block keeps in the same bytes).
uvec4 wr[2];
uvec4 xr[XL];

void load_step(uint o0, uint t0, uint k0) {
    const uint tid = gl_LocalInvocationID.x, r = tid >> 1, h = tid & 1u;
    wr[0] = w8(o0 + r, k0 + 8u * h);
    wr[1] = w8(o0 + r, k0 + 8u * h + 16u);
    [[unroll]] for (uint l = 0u; l < XL; ++l) {
        const uint idx = tid + l * WG, t = idx >> 2;
        xr[l] = t0 + t < p.n_tok ? x16[(t0 + t) * p.stride16 + k0 / 8u + (idx & 3u)] : uvec4(0u);
    }
}

void store_step(uint b) {
    const uint tid = gl_LocalInvocationID.x, r = tid >> 1, h = tid & 1u;
    put_word(b + r * RS + h, wr[0]);
    put_word(b + r * RS + h + 2u, wr[1]);
    [[unroll]] for (uint l = 0u; l < XL; ++l) {
        const uint idx = tid + l * WG;
        put_word(b + (BM + (idx >> 2)) * RS + (idx & 3u), xr[l]);
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
    store_step(0u);
    barrier();
    for (uint s = 0u; s < n_steps; ++s) {
        const uint cur = (s & 1u) * TILE;
        const bool more = s + 1u < n_steps;  // uniform
        if (more) load_step(o0, t0, (s + 1u) * BK);
        [[unroll]] for (uint kq = 0u; kq < BK / 8u; kq += 2u) {  // 16 elements of i = 2 words
            // A: rows x i, row-major; B: i x tokens, column n = token n's row, so column-major.
            MatA a[TM];
            MatB b[TN];
            [[unroll]] for (uint m = 0u; m < TM; ++m) coopMatLoadNV(a[m], sm, 8u * (cur + (m0 + 16u * m) * RS + kq), 8u * RS, false);
            [[unroll]] for (uint n = 0u; n < TN; ++n) coopMatLoadNV(b[n], sm, 8u * (cur + (BM + n0 + 8u * n) * RS + kq), 8u * RS, true);
            [[unroll]] for (uint m = 0u; m < TM; ++m)
                [[unroll]] for (uint n = 0u; n < TN; ++n) acc[m][n] = coopMatMulAddNV(a[m], b[n], acc[m][n]);
        }
        // The other buffer was last read in step s - 1, before that step's barrier.
        if (more) store_step(TILE - cur);
        barrier();
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
