// Portable float kernels. Sums run in LANES independent partial sums so GCC
// vectorizes them without -ffast-math (a single running sum is a serial
// dependency it may not reorder).
#include <cmath>
#include <cstring>

#include "formats/fp16.h"
#include "kernels/cpu/cpu_kernels.h"

namespace kiln::cpu {
namespace {

constexpr int LANES = 16;

float dot(const float* a, const float* b, int64_t n) {
    float acc[LANES] = {};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; ++j) acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (int j = 0; j < LANES; ++j) s += acc[j];
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
    float acc[LANES] = {};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; ++j) acc[j] += fp16_to_fp32(w[i + j]) * x[i + j];
    float s = 0.0f;
    for (int j = 0; j < LANES; ++j) s += acc[j];
    for (; i < n; ++i) s += fp16_to_fp32(w[i]) * x[i];
    return s;
}

void gemm(const float* w, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in,
          float* y, int64_t ldy, float*) {
    for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = 0; r < n_w; ++r) y[t * ldy + r] = dot(x + t * ldx, w + r * n_in, n_in);
}

void gemm_packed(const float* pack, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in, float* y,
                 int64_t ldy) {
    for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = 0; r < n_w; ++r) {
            float s = 0.0f;
            for (int64_t i = 0; i < n_in; ++i) s += x[t * ldx + i] * pack[i * 16 + r];
            y[t * ldy + r] = s;
        }
}

void axpy(float a, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

float exp_sum(float* x, int64_t n, float max) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    return sum;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace

const CpuKernels& scalar_kernels() {
    static const CpuKernels k{"scalar", gemm, gemm_packed, dot, dot_f16, axpy, f16_to_f32, f32_to_f16, exp_sum, swiglu, scalar_quant_kernels()};
    return k;
}

}  // namespace kiln::cpu
