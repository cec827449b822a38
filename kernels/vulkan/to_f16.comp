#version 450
// Activations rounded to f16 once per matmul input, for the cooperative-matrix
// matmul (matmul_cm.glsl), which reads them as 16-byte words: token t's row is
// stride16 uvec4s (8 halves each, a multiple of the matmul's 64-element step),
// zero past n_in, so the matmul's activation loads need no bounds in i.
// Each invocation writes one word (two halves).
layout(local_size_x = 256) in;
layout(std430, binding = 1) readonly buffer XBuf { float x[]; };
layout(std430, binding = 3) writeonly buffer X16 { uint x16[]; };
layout(push_constant) uniform Params {
    uint n_in, x_off, x_stride, stride16;
} p;

void main() {
    const uint t = gl_WorkGroupID.y, w = gl_GlobalInvocationID.x;
    if (w >= p.stride16 * 4u) return;
    const uint i = 2u * w, b = p.x_off + t * p.x_stride + i;
    const vec2 v = vec2(i < p.n_in ? x[b] : 0.0, i + 1u < p.n_in ? x[b + 1u] : 0.0);
    x16[t * p.stride16 * 4u + w] = packHalf2x16(v);
}
