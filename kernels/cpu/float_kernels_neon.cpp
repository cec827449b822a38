// AArch64 NEON float kernels (Advanced SIMD and its fp16 conversions are part of
// every AArch64 CPU; cmake/cpu_isa.cmake compiles *_neon.cpp for ARMv8.2-A +
// dotprod because the table as a whole needs quant_dot_neon.cpp's sdot). The
// table is only chosen after getauxval says the CPU has dotprod.
#include "kernels/cpu/cpu_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cmath>
#include <cstring>

namespace kiln::cpu {
namespace {

inline float f16(uint16_t h) {
    __fp16 v;
    std::memcpy(&v, &h, sizeof v);
    return float(v);
}

inline float32x4_t load_f16x4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

float dot(const float* a, const float* b, int64_t n) {
    float32x4_t s[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; ++j) s[j] = vfmaq_f32(s[j], vld1q_f32(a + i + 4 * j), vld1q_f32(b + i + 4 * j));
    for (; i + 4 <= n; i += 4) s[0] = vfmaq_f32(s[0], vld1q_f32(a + i), vld1q_f32(b + i));
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(s[0], s[1]), vaddq_f32(s[2], s[3])));
    for (; i < n; ++i) r += a[i] * b[i];
    return r;
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
    float32x4_t s[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; ++j) s[j] = vfmaq_f32(s[j], load_f16x4(w + i + 4 * j), vld1q_f32(x + i + 4 * j));
    for (; i + 4 <= n; i += 4) s[0] = vfmaq_f32(s[0], load_f16x4(w + i), vld1q_f32(x + i));
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(s[0], s[1]), vaddq_f32(s[2], s[3])));
    for (; i < n; ++i) r += f16(w[i]) * x[i];
    return r;
}

// The tile is packed as (n_in, 16): pack[i * 16 + r] = w[r][i], zero-padded
// past n_w. T tokens x 16 rows accumulate as outer products, x[t][i] times the
// 16 weights of column i in four vectors: 4T accumulators, results land as
// contiguous rows of y with no horizontal sums.
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
    float32x4_t acc[T][4];
    for (int t = 0; t < T; ++t)
        for (int j = 0; j < 4; ++j) acc[t][j] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n_in; ++i) {
        float32x4_t w[4];
        for (int j = 0; j < 4; ++j) w[j] = vld1q_f32(pack + i * 16 + 4 * j);
        for (int t = 0; t < T; ++t) {
            const float xv = x[t * ldx + i];
            for (int j = 0; j < 4; ++j) acc[t][j] = vfmaq_n_f32(acc[t][j], w[j], xv);
        }
    }
    for (int t = 0; t < T; ++t) {
        if (n_w == 16) {
            for (int j = 0; j < 4; ++j) vst1q_f32(y + t * ldy + 4 * j, acc[t][j]);
        } else {
            float tmp[16];
            for (int j = 0; j < 4; ++j) vst1q_f32(tmp + 4 * j, acc[t][j]);
            for (int64_t r = 0; r < n_w; ++r) y[t * ldy + r] = tmp[r];
        }
    }
}

void gemm_packed(const float* pack, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in, float* y,
                 int64_t ldy) {
    constexpr int T = 6;  // 24 accumulators + 4 weights of the 32 vector registers
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

void gemm(const float* w, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in, float* y, int64_t ldy,
          float* pack) {
    if (n_tok < 3) {  // decode-sized: packing would cost as much as the dots
        for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < n_w; ++r) y[t * ldy + r] = dot(x + t * ldx, w + r * n_in, n_in);
        return;
    }
    pack16(w, n_w, n_in, pack);
    gemm_packed(pack, n_w, x, ldx, n_tok, n_in, y, ldy);
}

void axpy(float a, const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; ++i) y[i] += a * x[i];
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(src + i));
        vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; ++i) dst[i] = f16(src[i]);
}

// fcvtn rounds by FPCR, nearest-even on Linux, as formats/fp16 does.
void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(src + i)), vld1q_f32(src + i + 4));
        vst1q_u16(dst + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; ++i) {
        const __fp16 h = __fp16(src[i]);
        std::memcpy(dst + i, &h, sizeof h);
    }
}

// exp(x) for 4 lanes, as float_kernels_avx2.cpp's exp8: x = n ln2 + r with
// |r| <= ln2/2 (ln2 split in two so r stays exact), exp(r) by its degree-6
// Taylor polynomial (relative error under 2e-7 on that range), times 2^n built
// in the exponent bits. Inputs below -87.3 (including -inf) give 0; above 88.7
// they saturate.
inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t lo_limit = vdupq_n_f32(-87.33654f);
    const uint32x4_t underflow = vcltq_f32(x, lo_limit);
    x = vminq_f32(vmaxq_f32(x, lo_limit), vdupq_n_f32(88.7f));
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.0f / 720);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    // 2^n in two halves so n = 128 (x near 88.7) does not overflow the exponent field.
    const int32x4_t ni = vcvtq_s32_f32(n);
    const int32x4_t half = vshrq_n_s32(ni, 1);
    const int32x4_t bias = vdupq_n_s32(127);
    const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(half, bias), 23));
    const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vsubq_s32(ni, half), bias), 23));
    const float32x4_t e = vmulq_f32(vmulq_f32(p, s1), s2);
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), underflow));
}

float exp_sum(float* x, int64_t n, float max) {
    const float32x4_t vmax = vdupq_n_f32(max);
    float32x4_t acc = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vmax));
        vst1q_f32(x + i, e);
        acc = vaddq_f32(acc, e);
    }
    float sum = vaddvq_f32(acc);
    for (; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    return sum;
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    int64_t i = 0;
    const float32x4_t one = vdupq_n_f32(1.0f);
    for (; i + 4 <= n; i += 4) {
        const float32x4_t g = vld1q_f32(gate + i);
        const float32x4_t e = exp4(vnegq_f32(g));
        vst1q_f32(out + i, vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), vld1q_f32(up + i)));
    }
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace

const CpuKernels* neon_kernels() {
    static const CpuKernels k{"neon", gemm, gemm_packed, dot, dot_f16, axpy, f16_to_f32, f32_to_f16, exp_sum, swiglu, *neon_quant_kernels()};
    return &k;
}

}  // namespace kiln::cpu

#else
namespace kiln::cpu {
const CpuKernels* neon_kernels() { return nullptr; }
}  // namespace kiln::cpu
#endif
