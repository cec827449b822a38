// Activations as 8-bit blocks for the integer-dot matvec (matvec.comp with
// USE_INT_DOT), written by quantize_q8.comp and, on the way out, by the ops
// whose output feeds a matvec (rms_norm, add_rms_norm, swiglu_q8, decode
// attention: attention_q8.glsl): one copy of
// the rounding, so every writer leaves the same bytes.
// Per token, 32-element blocks with d = max|x| / 127 and q = round(x / d), as
// formats' Q8_0 quantizer but d kept in f32. Token t starts at word t * q_stride:
//   qs: n_in / 4 words, four int8 each (element order);
//   then per block a vec2 (d, d * sum(q)): the sum serves the weight formats
//   with an offset or a min (sum_i w_i x_i = d_w * (sum q_w q_x) * d_x + m * d_x * sum q_x).
// The copy is binding 3 unless the shader names another (Q8_BINDING).
#ifndef Q8_BINDING
#define Q8_BINDING 3
#endif
layout(std430, binding = Q8_BINDING) writeonly buffer QBuf { uint qa[]; };
layout(std430, binding = Q8_BINDING) writeonly buffer QBuf2 { vec2 qa2[]; };

// Block blk (elements 32 blk .. 32 blk + 31, in v) of the token at word q_row.
void q8_store_block(uint q_row, uint n_in, uint blk, const vec4 v[8]) {
    float amax = 0.0;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        const vec4 a = abs(v[k]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    const float d = amax / 127.0;
    const float id = d != 0.0 ? 1.0 / d : 0.0;
    int sum = 0;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        const ivec4 q = clamp(ivec4(round(v[k] * id)), -127, 127);
        sum += q.x + q.y + q.z + q.w;
        qa[q_row + blk * 8u + k] = uint(q.x & 255) | (uint(q.y & 255) << 8) | (uint(q.z & 255) << 16) | (uint(q.w & 255) << 24);
    }
    qa2[(q_row + n_in / 4u) / 2u + blk] = vec2(d, d * float(sum));
}
