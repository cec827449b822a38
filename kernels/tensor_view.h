#pragma once
// Non-owning views of weights and activations as the backends see them.
#include <cstddef>
#include <cstdint>

#include "formats/ggml_type.h"

namespace kiln {

// A weight in host memory (usually a view into the mmapped GGUF file).
// ne[0] is the contiguous (row) dimension, as in GGUF; nb[i] is the byte stride
// of dimension i (nb[0] is the size of one element or one quant block's share).
struct TensorView {
    const void* data = nullptr;
    GgmlType type = GgmlType::F32;
    int64_t ne[4] = {1, 1, 1, 1};
    size_t nb[4] = {0, 0, 0, 0};

    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + size_t(r) * nb[1]; }
};

// A weight as a backend holds it: the host view plus, for device backends,
// the backend's own copy (`device` is the host pointer on the CPU backend).
struct Weight {
    TensorView host;
    const void* device = nullptr;

    GgmlType type() const { return host.type; }
    int64_t n_in() const { return host.ne[0]; }    // columns: the dot-product length
    int64_t n_out() const { return host.n_rows(); } // rows: the outputs
};

// An F32 activation matrix in backend memory: n_rows rows (usually tokens) of
// n_cols floats, `stride` floats from one row to the next.
struct Act {
    float* data = nullptr;
    int64_t n_rows = 0;
    int64_t n_cols = 0;
    int64_t stride = 0;

    float* row(int64_t r) const { return data + r * stride; }
    // Rows [r0, r0 + n) of this matrix, same memory.
    Act rows(int64_t r0, int64_t n) const { return {data + r0 * stride, n, n_cols, stride}; }
};

}  // namespace kiln
