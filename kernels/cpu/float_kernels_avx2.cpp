// AVX2 + FMA + F16C float kernels (compiled with -mavx2 -mfma -mf16c by
// cmake/cpu_isa.cmake; only called after CPUID says the CPU has them).
#include "kernels/cpu/cpu_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace kiln::cpu {
namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float dot(const float* a, const float* b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

// 3 tokens x 4 weight rows per step: 12 accumulators + 3 x + 1 w = 16 ymm
// registers; each loaded vector feeds 3 or 4 FMAs.
void kernel_3x4(const float* w, int64_t n_in, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy) {
    __m256 acc[3][4];
    for (auto& a : acc)
        for (auto& v : a) v = _mm256_setzero_ps();
    const float* x0 = x;
    const float* x1 = x + ldx;
    const float* x2 = x + 2 * ldx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 a0 = _mm256_loadu_ps(x0 + i), a1 = _mm256_loadu_ps(x1 + i), a2 = _mm256_loadu_ps(x2 + i);
        for (int r = 0; r < 4; ++r) {
            const __m256 b = _mm256_loadu_ps(w + r * n_in + i);
            acc[0][r] = _mm256_fmadd_ps(a0, b, acc[0][r]);
            acc[1][r] = _mm256_fmadd_ps(a1, b, acc[1][r]);
            acc[2][r] = _mm256_fmadd_ps(a2, b, acc[2][r]);
        }
    }
    for (int t = 0; t < 3; ++t)
        for (int r = 0; r < 4; ++r) {
            float s = hsum(acc[t][r]);
            for (int64_t j = i; j < n; ++j) s += x[t * ldx + j] * w[r * n_in + j];
            y[t * ldy + r] = s;
        }
}

void gemm(const float* w, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in,
          float* y, int64_t ldy) {
    const int64_t n_w4 = n_w - n_w % 4;
    const int64_t n_t3 = n_tok - n_tok % 3;
    for (int64_t t = 0; t < n_t3; t += 3)
        for (int64_t r = 0; r < n_w4; r += 4)
            kernel_3x4(w + r * n_in, n_in, x + t * ldx, ldx, n_in, y + t * ldy + r, ldy);
    // Edges: leftover rows for the 3-token blocks, then the leftover tokens.
    for (int64_t t = 0; t < n_t3; ++t)
        for (int64_t r = n_w4; r < n_w; ++r) y[t * ldy + r] = dot(x + t * ldx, w + r * n_in, n_in);
    for (int64_t t = n_t3; t < n_tok; ++t)
        for (int64_t r = 0; r < n_w; ++r) y[t * ldy + r] = dot(x + t * ldx, w + r * n_in, n_in);
}

void axpy(float a, const float* x, float* y, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * x[i];
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

}  // namespace

const CpuKernels* avx2_kernels() {
    static const CpuKernels k{"avx2", gemm, dot, axpy, f16_to_f32};
    return &k;
}

}  // namespace kiln::cpu

#else
namespace kiln::cpu {
const CpuKernels* avx2_kernels() { return nullptr; }
}  // namespace kiln::cpu
#endif
