// AVX2 + FMA + F16C float kernels (compiled with -mavx2 -mfma -mf16c by
// cmake/cpu_isa.cmake; only called after CPUID says the CPU has them).
#include "kernels/cpu/cpu_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cmath>

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

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
        s0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))),
                             _mm256_loadu_ps(x + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) s += _cvtsh_ss(w[i]) * x[i];
    return s;
}

// The tile is packed as (n_in, 16): pack[i * 16 + r] = w[r][i], zero-padded
// past n_w. Then T tokens x 16 rows accumulate as outer products, a broadcast
// of x[t][i] times the 16 weights of column i: 2T accumulators, results land
// as contiguous rows of y with no horizontal sums.
void pack16(const float* w, int64_t n_w, int64_t n_in, float* pack) {
    for (int64_t r = 0; r < 16; ++r) {
        if (r < n_w) {
            const float* src = w + r * n_in;
            for (int64_t i = 0; i < n_in; ++i) pack[i * 16 + r] = src[i];
        } else {
            for (int64_t i = 0; i < n_in; ++i) pack[i * 16 + r] = 0.0f;
        }
    }
}

template <int T>
void kernel_tx16(const float* pack, const float* x, int64_t ldx, int64_t n_in, float* y, int64_t ldy, int64_t n_w) {
    __m256 acc[T][2];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_in; ++i) {
        const __m256 w0 = _mm256_loadu_ps(pack + i * 16);
        const __m256 w1 = _mm256_loadu_ps(pack + i * 16 + 8);
        for (int t = 0; t < T; ++t) {
            const __m256 xb = _mm256_broadcast_ss(x + t * ldx + i);
            acc[t][0] = _mm256_fmadd_ps(xb, w0, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(xb, w1, acc[t][1]);
        }
    }
    for (int t = 0; t < T; ++t) {
        if (n_w == 16) {
            _mm256_storeu_ps(y + t * ldy, acc[t][0]);
            _mm256_storeu_ps(y + t * ldy + 8, acc[t][1]);
        } else {
            alignas(32) float tmp[16];
            _mm256_store_ps(tmp, acc[t][0]);
            _mm256_store_ps(tmp + 8, acc[t][1]);
            for (int64_t r = 0; r < n_w; ++r) y[t * ldy + r] = tmp[r];
        }
    }
}

void gemm_packed(const float* pack, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in, float* y,
                 int64_t ldy) {
    constexpr int T = 6;  // 12 accumulators + 2 weights + 1 broadcast of 16 ymm registers
    int64_t t = 0;
    for (; t + T <= n_tok; t += T) kernel_tx16<T>(pack, x + t * ldx, ldx, n_in, y + t * ldy, ldy, n_w);
    switch (n_tok - t) {
        case 5: kernel_tx16<5>(pack, x + t * ldx, ldx, n_in, y + t * ldy, ldy, n_w); break;
        case 4: kernel_tx16<4>(pack, x + t * ldx, ldx, n_in, y + t * ldy, ldy, n_w); break;
        case 3: kernel_tx16<3>(pack, x + t * ldx, ldx, n_in, y + t * ldy, ldy, n_w); break;
        case 2: kernel_tx16<2>(pack, x + t * ldx, ldx, n_in, y + t * ldy, ldy, n_w); break;
        case 1: kernel_tx16<1>(pack, x + t * ldx, ldx, n_in, y + t * ldy, ldy, n_w); break;
        default: break;
    }
}

void gemm(const float* w, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in,
          float* y, int64_t ldy, float* pack) {
    if (n_tok < 3) {  // decode-sized: packing would cost as much as the dots
        for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < n_w; ++r) y[t * ldy + r] = dot(x + t * ldx, w + r * n_in, n_in);
        return;
    }
    pack16(w, n_w, n_in, pack);
    gemm_packed(pack, n_w, x, ldx, n_tok, n_in, y, ldy);
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

void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

// exp(x) for 8 lanes: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so
// r stays exact), exp(r) by its degree-6 Taylor polynomial (relative error
// under 2e-7 on that range), times 2^n built in the exponent bits. Inputs
// below -87.3 (including -inf) give 0; above 88.7 they saturate.
inline __m256 exp8(__m256 x) {
    const __m256 lo_limit = _mm256_set1_ps(-87.33654f);
    const __m256 underflow = _mm256_cmp_ps(x, lo_limit, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo_limit), _mm256_set1_ps(88.7f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    // 2^n in two halves so n = 128 (x near 88.7) does not overflow the exponent field.
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}

float exp_sum(float* x, int64_t n, float max) {
    const __m256 vmax = _mm256_set1_ps(max);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum(acc);
    for (; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    return sum;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace

const CpuKernels* avx2_kernels() {
    static const CpuKernels k{"avx2", gemm, gemm_packed, dot, dot_f16, axpy, f16_to_f32, f32_to_f16, exp_sum, swiglu, *avx2_quant_kernels()};
    return &k;
}

}  // namespace kiln::cpu

#else
namespace kiln::cpu {
const CpuKernels* avx2_kernels() { return nullptr; }
}  // namespace kiln::cpu
#endif
