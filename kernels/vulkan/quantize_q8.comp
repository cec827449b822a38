#version 450
// Activations to 8-bit blocks for the integer-dot matvec (matvec.comp with
// USE_INT_DOT): per token, 32-element blocks with d = max|x| / 127 and
// q = round(x / d), as formats' Q8_0 quantizer but d kept in f32.
// Layout of token t at word t * q_stride of `qa`:
//   qs: n_in / 4 words, four int8 each (element order);
//   then per block a vec2 (d, d * sum(q)): the sum serves the weight formats
//   with an offset or a min (sum_i w_i x_i = d_w * (sum q_w q_x) * d_x + m * d_x * sum q_x).
layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
layout(std430, binding = 3) writeonly buffer QBuf { uint qa[]; };
layout(std430, binding = 3) writeonly buffer QBuf2 { vec2 qa2[]; };
layout(push_constant) uniform Params {
    uint n_in, n_tok, x_off, x_stride, q_stride;
} p;

void main() {
    const uint blk = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (blk >= p.n_in / 32u) return;
    const uint xb = (p.x_off + t * p.x_stride) / 4u + blk * 8u;
    vec4 v[8];
    float amax = 0.0;
    for (uint k = 0u; k < 8u; ++k) {
        v[k] = x4[xb + k];
        const vec4 a = abs(v[k]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    const float d = amax / 127.0;
    const float id = d != 0.0 ? 1.0 / d : 0.0;
    const uint qb = t * p.q_stride + blk * 8u;
    int sum = 0;
    for (uint k = 0u; k < 8u; ++k) {
        const ivec4 q = clamp(ivec4(round(v[k] * id)), -127, 127);
        sum += q.x + q.y + q.z + q.w;
        qa[qb + k] = uint(q.x & 255) | (uint(q.y & 255) << 8) | (uint(q.z & 255) << 16) | (uint(q.w & 255) << 24);
    }
    qa2[(t * p.q_stride + p.n_in / 4u) / 2u + blk] = vec2(d, d * float(sum));
}
