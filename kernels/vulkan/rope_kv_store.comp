#version 450
// The steps between the Q/K/V projections and attention in one dispatch:
// rope on q (in place), rope on k (in place) and the store of k and v into
// cells[t] of one layer's cache (F16, two per word, or F32), as rope.comp then
// kv_store.comp would, bit for bit. Workgroup (h, t): h < n_head rotates query
// head h of token t; h = n_head + j takes KV head j: its k row goes through
// shared memory, so an invocation can rotate the pair it stores whatever the
// pairing (normal: neighbours; neox: half a rotation apart).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "rope.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 1) buffer QBuf { float q[]; };
layout(std430, binding = 2) readonly buffer Arena { float arena[]; };
layout(std430, binding = 2) readonly buffer ArenaInt { int arena_i[]; };
layout(std430, binding = 3) writeonly buffer KCache { uint k_cache[]; };
layout(std430, binding = 4) writeonly buffer VCache { uint v_cache[]; };
layout(std430, binding = 5) buffer KBuf { float k[]; };
layout(std430, binding = 6) readonly buffer VBuf { float v[]; };
layout(push_constant) uniform Params {
    uint q_off, q_stride, k_off, k_stride, v_off, v_stride;
    uint n_head, head_dim, n_rot, neox, cs_off, cells_off, n_kv_dim, f16;
} p;
shared float head[256];  // one k head (head_dim <= 256: the backend checks)

// The rotated element j of the head in `head` (token t's angles).
float rotated(uint j, uint cs) {
    const uint half_rot = p.n_rot / 2u;
    if (j >= p.n_rot) return head[j];
    const uint i = p.neox != 0u ? j % half_rot : j / 2u;
    const uint a = p.neox != 0u ? i : 2u * i;
    const vec2 r = rope_rotate(head[a], head[a + (p.neox != 0u ? half_rot : 1u)], arena[cs + i], arena[cs + half_rot + i]);
    return (p.neox != 0u ? j < half_rot : (j & 1u) == 0u) ? r.x : r.y;
}

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint half_rot = p.n_rot / 2u;
    const uint cs = p.cs_off + t * p.n_rot;
    if (h < p.n_head) {
        const uint base = p.q_off + t * p.q_stride + h * p.head_dim;
        for (uint i = tid; i < half_rot; i += 64u) {
            const uint a = p.neox != 0u ? i : 2u * i;
            const uint b = p.neox != 0u ? i + half_rot : 2u * i + 1u;
            const vec2 r = rope_rotate(q[base + a], q[base + b], arena[cs + i], arena[cs + half_rot + i]);
            q[base + a] = r.x;
            q[base + b] = r.y;
        }
        return;
    }
    const uint j = h - p.n_head;  // KV head
    const uint kb = p.k_off + t * p.k_stride + j * p.head_dim, vb = p.v_off + t * p.v_stride + j * p.head_dim;
    for (uint e = tid; e < p.head_dim; e += 64u) head[e] = k[kb + e];
    barrier();
    const uint dst = uint(arena_i[p.cells_off + t]) * p.n_kv_dim + j * p.head_dim;  // element index in the cache
    if (p.f16 != 0u) {
        for (uint e = 2u * tid; e < p.head_dim; e += 128u) {
            const float k0 = rotated(e, cs), k1 = rotated(e + 1u, cs);
            k[kb + e] = k0;
            k[kb + e + 1u] = k1;
            k_cache[(dst + e) / 2u] = f32_to_f16_bits(k0) | (f32_to_f16_bits(k1) << 16);
            v_cache[(dst + e) / 2u] = f32_to_f16_bits(v[vb + e]) | (f32_to_f16_bits(v[vb + e + 1u]) << 16);
        }
    } else {
        for (uint e = tid; e < p.head_dim; e += 64u) {
            const float k0 = rotated(e, cs);
            k[kb + e] = k0;
            k_cache[dst + e] = floatBitsToUint(k0);
            v_cache[dst + e] = floatBitsToUint(v[vb + e]);
        }
    }
}
