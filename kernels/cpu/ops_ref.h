#pragma once
// Plain scalar reference twin of every backend op, written for obviousness,
// not speed. The fast CPU kernels (and later CUDA/Vulkan) are tested against these.
// All pointers are host memory.
#include <cstdint>
#include <span>

#include "kernels/backend.h"

namespace kiln::ref {

// One dequantized row of a weight (row r of w) into dst[0, w.ne[0]).
void dequantize_row(const TensorView& w, int64_t r, float* dst);

void get_rows(const TensorView& table, std::span<const int32_t> ids, Act out);
void matmul(const TensorView& w, const Act& x, Act y);
void rms_norm(const Act& x, const float* weight, float eps, Act out);
void rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p);
void kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells);
void attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
               std::span<const int32_t> pos, std::span<const int32_t> seq, Act out);
void swiglu(const Act& gate, const Act& up, Act out);
void add(const Act& a, const Act& b, Act out);
void softmax(Act x);
void copy_rows(const Act& src, std::span<const int32_t> rows, Act out);

// cos/sin of the rotation for pair i0/2 of a head at position p (shared by the
// fast kernels so that both compute the same angles).
struct RopeCorrDims {
    float lo = 0.0f, hi = 0.0f;
};
RopeCorrDims rope_yarn_corr_dims(const RopeParams& p);
void rope_cos_sin(const RopeParams& p, const RopeCorrDims& corr, int32_t pos, float* cos_out, float* sin_out);

}  // namespace kiln::ref
