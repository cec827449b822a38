// Shared shape of the two-input elementwise ops: out = f(a, b) over
// (n_rows, n_cols); any of the three may be the same buffer.
layout(local_size_x = 256) in;
layout(std430, binding = 1) readonly buffer ABuf { float a[]; };
layout(std430, binding = 2) readonly buffer BBuf { float b[]; };
layout(std430, binding = 3) writeonly buffer OutBuf { float outv[]; };
layout(push_constant) uniform Params {
    uint n_cols, a_off, a_stride, b_off, b_stride, o_off, o_stride;
} p;

float op(float av, float bv);

void main() {
    const uint i = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (i >= p.n_cols) return;
    outv[p.o_off + t * p.o_stride + i] = op(a[p.a_off + t * p.a_stride + i], b[p.b_off + t * p.b_stride + i]);
}
