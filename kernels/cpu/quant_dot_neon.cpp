// Integer dot kernels for AArch64 NEON with the dot-product extension (sdot:
// four int8 x int8 products summed into each int32 lane), compiled with
// -march=armv8.2-a+dotprod by cmake/cpu_isa.cmake and only called after
// getauxval(AT_HWCAP) says the CPU has it (cpu_kernels.cpp).
//
// sdot multiplies signed bytes by signed bytes, so unlike x86's maddubs the
// weights need no unsigned offset trick: legacy quants are unpacked to their
// signed values (q - 8, q - 16, or q as stored), and the K-quants to their
// unsigned u <= 63 (kquant_scales.h), which are non-negative int8 as well.
// Same shapes as quant_dot_x86.h: a tile of RM weight rows x RN tokens unpacks
// each weight block once and keeps RM * RN accumulators in registers (NEON has
// 32 vector registers of 128 bits).
#include "kernels/cpu/cpu_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/fp16.h"
#include "formats/quant_blocks.h"
#include "kernels/cpu/q8_act.h"

namespace kiln::cpu {
namespace {

// An fp16 block scale to float in one instruction (exact, as fp16_to_fp32).
inline float f16(fp16_t h) {
    __fp16 v;
    std::memcpy(&v, &h, sizeof v);
    return float(v);
}

// ---- activation quantizers (bit for bit the scalar ones) ---------------------

// max |x| of 32 floats. vmaxnm prefers a number to a NaN, as std::max(amax, NaN)
// keeps amax in the scalar quantizer; starting from 0 keeps an all-NaN block at 0.
inline float abs_max_32(const float* x) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int j = 0; j < 32; j += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    return vmaxnmvq_f32(m);
}

// 32 floats times `scale`, rounded to nearest-even and saturated to [-128, 127]
// like the scalar to_int8 (a NaN becomes -128: vmaxnm picks the number), stored
// as 32 int8 in order. Returns the sum of the 32 integers.
inline int round_store_32(const float* x, float scale, int8_t* dst) {
    const float32x4_t lo = vdupq_n_f32(-128.0f), hi = vdupq_n_f32(127.0f);
    int32x4_t v[8];
    for (int j = 0; j < 8; ++j) {
        const float32x4_t r = vrndnq_f32(vmulq_n_f32(vld1q_f32(x + 4 * j), scale));
        v[j] = vcvtq_s32_f32(vminnmq_f32(vmaxnmq_f32(r, lo), hi));
    }
    const int16x8_t h0 = vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1])), h1 = vcombine_s16(vmovn_s32(v[2]), vmovn_s32(v[3]));
    const int16x8_t h2 = vcombine_s16(vmovn_s32(v[4]), vmovn_s32(v[5])), h3 = vcombine_s16(vmovn_s32(v[6]), vmovn_s32(v[7]));
    vst1q_s8(dst, vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
    vst1q_s8(dst + 16, vcombine_s8(vmovn_s16(h2), vmovn_s16(h3)));
    return vaddvq_s32(vaddq_s32(vaddq_s32(vpaddlq_s16(h0), vpaddlq_s16(h1)), vaddq_s32(vpaddlq_s16(h2), vpaddlq_s16(h3))));
}

inline float fp16_round(float x) {
    const __fp16 h = __fp16(x);  // FPCR rounding: nearest-even, as fp32_to_fp16
    return float(h);
}

void quantize_q8_32(const float* x, int64_t n, uint8_t* row) {
    const int64_t nb = n / 32;
    auto* qs = reinterpret_cast<int8_t*>(row);
    auto* d = reinterpret_cast<float*>(row + n);
    for (int64_t b = 0; b < nb; ++b) {
        const float amax = abs_max_32(x + 32 * b);
        const float db = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        const int sum = round_store_32(x + 32 * b, id, qs + 32 * b);
        d[b] = fp16_round(db);
        d[nb + b] = fp16_round(db * float(sum));
        reinterpret_cast<int32_t*>(d + 2 * nb)[b] = sum;
    }
}

void quantize_q8_K(const float* x, int64_t n, uint8_t* row) {
    const int64_t nb = n / 256;
    auto* qs = reinterpret_cast<int8_t*>(row);
    auto* d = reinterpret_cast<float*>(row + n);
    auto* bsums = reinterpret_cast<int16_t*>(d + nb);
    for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + 256 * b;
        int8_t* q = qs + 256 * b;
        float amax = 0.0f;
        for (int j = 0; j < 256; j += 32) amax = std::max(amax, abs_max_32(xb + j));
        if (amax == 0.0f) {
            std::memset(q, 0, 256);
            std::memset(bsums + 16 * b, 0, 16 * sizeof(int16_t));
            d[b] = 0.0f;
            continue;
        }
        // The first value of that magnitude decides the sign, as in the reference scan.
        int j_max = 0;
        while (j_max < 255 && std::fabs(xb[j_max]) != amax) ++j_max;
        const float iscale = -127.f / xb[j_max];
        for (int j = 0; j < 256; j += 32) round_store_32(xb + j, iscale, q + j);
        for (int j = 0; j < 16; ++j) bsums[16 * b + j] = int16_t(vaddlvq_s8(vld1q_s8(q + 16 * j)));
        d[b] = 1 / iscale;
    }
}

// ---- legacy blocks: 32 values, one scale (Q4_1/Q5_1 also a min) -------------

// Elements 0-15 of a 4-bit block are the low nibbles of qs, 16-31 the high ones.
inline void nibbles(const uint8_t* qs, uint8x16_t& lo, uint8x16_t& hi) {
    const uint8x16_t v = vld1q_u8(qs);
    lo = vandq_u8(v, vdupq_n_u8(0x0F));
    hi = vshrq_n_u8(v, 4);
}

// 0x10 in byte j where bit j of the little-endian 32-bit qh is set (elements
// 0-15 in lo, 16-31 in hi): the fifth bit of Q5_0/Q5_1.
inline void fifth_bits(const uint8_t* qh, uint8x16_t& lo, uint8x16_t& hi) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    const uint8x16_t bytes = vreinterpretq_u8_u32(vdupq_n_u32(h));
    static constexpr uint8_t kLoIdx[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    static constexpr uint8_t kHiIdx[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static constexpr uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bit = vld1q_u8(kBit), x10 = vdupq_n_u8(0x10);
    lo = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kLoIdx)), bit), x10);
    hi = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kHiIdx)), bit), x10);
}

inline int8x16_t minus(uint8x16_t u, int offset) { return vsubq_s8(vreinterpretq_s8_u8(u), vdupq_n_s8(int8_t(offset))); }

// For each type: its 32 signed quants (w = d * q, + m for the types with a min).
template <class Block> struct Legacy;
template <> struct Legacy<block_q4_0> {
    static constexpr bool kMin = false;
    static void quants(const block_q4_0& b, int8x16_t& q0, int8x16_t& q1) {
        uint8x16_t lo, hi;
        nibbles(b.qs, lo, hi);
        q0 = minus(lo, 8);
        q1 = minus(hi, 8);
    }
    static float min(const block_q4_0&) { return 0.0f; }
};
template <> struct Legacy<block_q4_1> {
    static constexpr bool kMin = true;
    static void quants(const block_q4_1& b, int8x16_t& q0, int8x16_t& q1) {
        uint8x16_t lo, hi;
        nibbles(b.qs, lo, hi);
        q0 = vreinterpretq_s8_u8(lo);
        q1 = vreinterpretq_s8_u8(hi);
    }
    static float min(const block_q4_1& b) { return f16(b.m); }
};
template <> struct Legacy<block_q5_0> {
    static constexpr bool kMin = false;
    static void quants(const block_q5_0& b, int8x16_t& q0, int8x16_t& q1) {
        uint8x16_t lo, hi, h0, h1;
        nibbles(b.qs, lo, hi);
        fifth_bits(b.qh, h0, h1);
        q0 = minus(vorrq_u8(lo, h0), 16);
        q1 = minus(vorrq_u8(hi, h1), 16);
    }
    static float min(const block_q5_0&) { return 0.0f; }
};
template <> struct Legacy<block_q5_1> {
    static constexpr bool kMin = true;
    static void quants(const block_q5_1& b, int8x16_t& q0, int8x16_t& q1) {
        uint8x16_t lo, hi, h0, h1;
        nibbles(b.qs, lo, hi);
        fifth_bits(b.qh, h0, h1);
        q0 = vreinterpretq_s8_u8(vorrq_u8(lo, h0));
        q1 = vreinterpretq_s8_u8(vorrq_u8(hi, h1));
    }
    static float min(const block_q5_1& b) { return f16(b.m); }
};
template <> struct Legacy<block_q8_0> {
    static constexpr bool kMin = false;
    static void quants(const block_q8_0& b, int8x16_t& q0, int8x16_t& q1) {
        q0 = vld1q_s8(b.qs);
        q1 = vld1q_s8(b.qs + 16);
    }
    static float min(const block_q8_0&) { return 0.0f; }
};

// The four lane sums of a, b, c, d in one vector.
inline float32x4_t hsum_4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
    return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d));
}

constexpr int kPrefetchBlocks = 32;

// RM rows x RN tokens of one legacy type.
template <class Block, int RM, int RN>
void legacy_tile(const uint8_t* w, size_t w_stride, const uint8_t* xq, size_t x_stride, int64_t n_in, float* y,
                 int64_t ldy) {
    using L = Legacy<Block>;
    constexpr ActQuant kAct = L::kMin ? ActQuant::Q8_1 : ActQuant::Q8_0;
    const int64_t nb = n_in / 32;
    const Block* rows[RM];
    for (int r = 0; r < RM; ++r) rows[r] = reinterpret_cast<const Block*>(w + size_t(r) * w_stride);
    Q8RowView x[RN];
    for (int t = 0; t < RN; ++t) x[t] = q8_row_view(kAct, xq + size_t(t) * x_stride, n_in);
    float32x4_t acc[RM][RN];
    float mins[RM][RN] = {};
    for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) acc[r][t] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; ++b) {
        int8x16_t q0[RM], q1[RM];
        float dw[RM];
        for (int r = 0; r < RM; ++r) {
            // One token reads each weight once, from memory: fetch ahead of the loads.
            if constexpr (RN == 1) __builtin_prefetch(rows[r] + b + kPrefetchBlocks);
            L::quants(rows[r][b], q0[r], q1[r]);
            dw[r] = f16(rows[r][b].d);
        }
        for (int t = 0; t < RN; ++t) {
            const int8x16_t x0 = vld1q_s8(x[t].qs + 32 * b), x1 = vld1q_s8(x[t].qs + 32 * b + 16);
            const float dx = x[t].d[b];
            for (int r = 0; r < RM; ++r) {
                // 8 products per lane, each under 2^14: exact in int32 and in float.
                const int32x4_t p = vdotq_s32(vdotq_s32(vdupq_n_s32(0), q0[r], x0), q1[r], x1);
                acc[r][t] = vfmaq_n_f32(acc[r][t], vcvtq_f32_s32(p), dw[r] * dx);
                if constexpr (L::kMin) mins[r][t] += L::min(rows[r][b]) * x[t].s[b];
            }
        }
    }
    for (int t = 0; t < RN; ++t) {
        if constexpr (RM % 4 == 0) {
            for (int r = 0; r < RM; r += 4) {
                float32x4_t v = hsum_4(acc[r][t], acc[r + 1][t], acc[r + 2][t], acc[r + 3][t]);
                if constexpr (L::kMin) v = vaddq_f32(v, float32x4_t{mins[r][t], mins[r + 1][t], mins[r + 2][t], mins[r + 3][t]});
                vst1q_f32(y + t * ldy + r, v);
            }
        } else {
            for (int r = 0; r < RM; ++r) y[t * ldy + r] = vaddvq_f32(acc[r][t]) + mins[r][t];
        }
    }
}

// Row and token blocking: 4 x 4 accumulators, 8 weight and 2 activation vectors
// of the 32 registers.
constexpr int kLegacyRM = 4;
constexpr int kLegacyRN = 4;

template <class Block, int RM>
void legacy_rows(const uint8_t* w, size_t w_stride, const uint8_t* xq, size_t x_stride, int64_t n_tok, int64_t n_in,
                 float* y, int64_t ldy) {
    int64_t t = 0;
    for (; t + kLegacyRN <= n_tok; t += kLegacyRN)
        legacy_tile<Block, RM, kLegacyRN>(w, w_stride, xq + size_t(t) * x_stride, x_stride, n_in, y + t * ldy, ldy);
    const uint8_t* xt = xq + size_t(t) * x_stride;
    float* yt = y + t * ldy;
    switch (n_tok - t) {
        case 3: legacy_tile<Block, RM, 3>(w, w_stride, xt, x_stride, n_in, yt, ldy); break;
        case 2: legacy_tile<Block, RM, 2>(w, w_stride, xt, x_stride, n_in, yt, ldy); break;
        case 1: legacy_tile<Block, RM, 1>(w, w_stride, xt, x_stride, n_in, yt, ldy); break;
        default: break;
    }
}

template <class Block>
void legacy_gemm(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* xq, size_t x_stride, int64_t n_tok,
                 int64_t n_in, float* y, int64_t ldy) {
    int64_t r = 0;
    for (; r + kLegacyRM <= n_rows; r += kLegacyRM)
        legacy_rows<Block, kLegacyRM>(w + size_t(r) * w_stride, w_stride, xq, x_stride, n_tok, n_in, y + r, ldy);
    for (; r < n_rows; ++r) legacy_rows<Block, 1>(w + size_t(r) * w_stride, w_stride, xq, x_stride, n_tok, n_in, y + r, ldy);
}

// ---- K-quants: 256 values as 16 sub-blocks of 16 unsigned u (kquant_scales.h) --

struct KUnpacked {
    int8x16_t u[16];  // u[j] = the 16 values of sub-block j
};

inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }
// v >> n for a shift count known only after unrolling (vshrq_n wants an immediate).
inline uint8x16_t shr(uint8x16_t v, int n) { return vshlq_u8(v, vdupq_n_s8(int8_t(-n))); }

// 64 bytes of 2-bit quants (Q2_K, Q3_K): element e of each 128 in byte e % 32 of
// its 32-byte half, at bits 2 * ((e % 128) / 32); sub-block j = 8h + 2c + (e % 32 >= 16).
inline void two_bit_subblocks(const uint8_t* qs, KUnpacked& k) {
    const uint8x16_t three = vdupq_n_u8(3);
    for (int h = 0; h < 2; ++h) {
        const uint8x16_t a = vld1q_u8(qs + 32 * h), b = vld1q_u8(qs + 32 * h + 16);
        for (int c = 0; c < 4; ++c) {
            k.u[8 * h + 2 * c] = s8(vandq_u8(shr(a, 2 * c), three));
            k.u[8 * h + 2 * c + 1] = s8(vandq_u8(shr(b, 2 * c), three));
        }
    }
}

inline void kunpack_neon(const block_q2_K& b, KUnpacked& k) { two_bit_subblocks(b.qs, k); }

// Q3_K: plus 4 where hmask[e % 32] has bit e / 32 (sub-block j: bit j / 2 of
// hmask[0..15] for even j, hmask[16..31] for odd j).
inline void kunpack_neon(const block_q3_K& b, KUnpacked& k) {
    two_bit_subblocks(b.qs, k);
    const uint8x16_t m0 = vld1q_u8(b.hmask), m1 = vld1q_u8(b.hmask + 16), one = vdupq_n_u8(1);
    for (int j = 0; j < 16; ++j) {
        const uint8x16_t bit = vandq_u8(shr(j % 2 ? m1 : m0, j / 2), one);
        k.u[j] = vorrq_s8(k.u[j], s8(vshlq_n_u8(bit, 2)));
    }
}

// Q4_K: each 64 values use 32 bytes, low nibbles the first 32, high nibbles the next.
inline void kunpack_neon(const block_q4_K& b, KUnpacked& k) {
    const uint8x16_t lo = vdupq_n_u8(0x0F);
    for (int g = 0; g < 4; ++g) {
        const uint8x16_t a = vld1q_u8(b.qs + 32 * g), c = vld1q_u8(b.qs + 32 * g + 16);
        k.u[4 * g] = s8(vandq_u8(a, lo));
        k.u[4 * g + 1] = s8(vandq_u8(c, lo));
        k.u[4 * g + 2] = s8(vshrq_n_u8(a, 4));
        k.u[4 * g + 3] = s8(vshrq_n_u8(c, 4));
    }
}

// Q5_K: Q4_K plus 16 where qh[e % 32] has bit e / 32.
inline void kunpack_neon(const block_q5_K& b, KUnpacked& k) {
    const uint8x16_t lo = vdupq_n_u8(0x0F), one = vdupq_n_u8(1);
    const uint8x16_t h0 = vld1q_u8(b.qh), h1 = vld1q_u8(b.qh + 16);
    for (int g = 0; g < 4; ++g) {
        const uint8x16_t a = vld1q_u8(b.qs + 32 * g), c = vld1q_u8(b.qs + 32 * g + 16);
        const uint8x16_t low[4] = {vandq_u8(a, lo), vandq_u8(c, lo), vshrq_n_u8(a, 4), vshrq_n_u8(c, 4)};
        for (int i = 0; i < 4; ++i) {
            const int bit = 2 * g + i / 2;  // values 64g + 32(i / 2) + ...: bit e / 32
            const uint8x16_t high = vandq_u8(shr(i % 2 ? h1 : h0, bit), one);
            k.u[4 * g + i] = s8(vorrq_u8(low[i], vshlq_n_u8(high, 4)));
        }
    }
}

// Q6_K: per 128 values (h), quarter c takes the low nibbles (c < 2) or high
// nibbles (c >= 2) of ql[64h + 32(c % 2) ...] and bits 2c, 2c+1 of qh[32h ...].
inline void kunpack_neon(const block_q6_K& b, KUnpacked& k) {
    const uint8x16_t lo = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
    for (int h = 0; h < 2; ++h)
        for (int half = 0; half < 2; ++half) {  // l in [16 half, 16 half + 16)
            const uint8x16_t ql0 = vld1q_u8(b.ql + 64 * h + 16 * half), ql1 = vld1q_u8(b.ql + 64 * h + 32 + 16 * half);
            const uint8x16_t qh = vld1q_u8(b.qh + 32 * h + 16 * half);
            const uint8x16_t low[4] = {vandq_u8(ql0, lo), vandq_u8(ql1, lo), vshrq_n_u8(ql0, 4), vshrq_n_u8(ql1, 4)};
            for (int c = 0; c < 4; ++c) {
                const uint8x16_t high = vandq_u8(shr(qh, 2 * c), three);
                k.u[8 * h + 2 * c + half] = s8(vorrq_u8(low[c], vshlq_n_u8(high, 4)));
            }
        }
}

// kquant_scales.h's per-block factors as vectors: the 16 sub-block scales s
// and mins m as int16 (sub-blocks 0-7, 8-15), and the float d and c.
struct KScalesNeon {
    int16x8_t s[2], m[2];
    float d, c;
};

inline int16x8_t widen_lo(uint8x16_t v) { return vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))); }
inline int16x8_t widen_hi(uint8x16_t v) { return vreinterpretq_s16_u16(vmovl_high_u8(v)); }

inline void kscales_neon(const block_q2_K& b, KScalesNeon& k) {
    const uint8x16_t sc = vld1q_u8(b.scales);
    const uint8x16_t s = vandq_u8(sc, vdupq_n_u8(0x0F)), m = vshrq_n_u8(sc, 4);
    k.s[0] = widen_lo(s);
    k.s[1] = widen_hi(s);
    k.m[0] = widen_lo(m);
    k.m[1] = widen_hi(m);
    k.d = f16(b.d);
    k.c = f16(b.dmin);
}

// Q3_K's 6-bit scales (q3_K_scale) as four 32-bit words: word i holds the low
// nibbles of sub-blocks 4i..4i+3 (scales[0..7], low nibbles then high ones)
// and their top two bits from scales[8..11] at bits 2i.
inline void kscales_neon(const block_q3_K& b, KScalesNeon& k) {
    uint32_t w[3], a[4];
    std::memcpy(w, b.scales, 12);
    const uint32_t nib = 0x0F0F0F0F, two = 0x03030303;
    a[0] = (w[0] & nib) | ((w[2] & two) << 4);
    a[1] = (w[1] & nib) | (((w[2] >> 2) & two) << 4);
    a[2] = ((w[0] >> 4) & nib) | (((w[2] >> 4) & two) << 4);
    a[3] = ((w[1] >> 4) & nib) | (((w[2] >> 6) & two) << 4);
    const int8x16_t s = vsubq_s8(vld1q_s8(reinterpret_cast<const int8_t*>(a)), vdupq_n_s8(32));
    k.s[0] = vmovl_s8(vget_low_s8(s));
    k.s[1] = vmovl_high_s8(s);
    k.m[0] = vshlq_n_s16(k.s[0], 2);
    k.m[1] = vshlq_n_s16(k.s[1], 2);
    k.d = k.c = f16(b.d);
}

// Q4_K/Q5_K (get_scale_min_k4) as 32-bit words: sub-blocks of 32 values 0-3 keep
// their low 6 bits in bytes 0-3 (scales) and 4-7 (mins); 4-7 take a nibble from
// bytes 8-11 and their top 2 bits from the top of bytes 0-3 and 4-7. Each value
// serves two 16-value sub-blocks.
template <class Block>
inline void kscales_k4_neon(const Block& b, KScalesNeon& k) {
    uint32_t w[3];
    std::memcpy(w, b.scales, 12);
    const uint32_t low6 = 0x3F3F3F3F, nib = 0x0F0F0F0F, top2 = 0x03030303;
    const uint32_t sc[2] = {w[0] & low6, (w[2] & nib) | (((w[0] >> 6) & top2) << 4)};
    const uint32_t mn[2] = {w[1] & low6, ((w[2] >> 4) & nib) | (((w[1] >> 6) & top2) << 4)};
    const int16x8_t s = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(reinterpret_cast<const uint8_t*>(sc))));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(reinterpret_cast<const uint8_t*>(mn))));
    k.s[0] = vzip1q_s16(s, s);
    k.s[1] = vzip2q_s16(s, s);
    k.m[0] = vzip1q_s16(m, m);
    k.m[1] = vzip2q_s16(m, m);
    k.d = f16(b.d);
    k.c = f16(b.dmin);
}
inline void kscales_neon(const block_q4_K& b, KScalesNeon& k) { kscales_k4_neon(b, k); }
inline void kscales_neon(const block_q5_K& b, KScalesNeon& k) { kscales_k4_neon(b, k); }

inline void kscales_neon(const block_q6_K& b, KScalesNeon& k) {
    const int8x16_t s = vld1q_s8(b.scales);
    k.s[0] = vmovl_s8(vget_low_s8(s));
    k.s[1] = vmovl_high_s8(s);
    k.m[0] = vshlq_n_s16(k.s[0], 5);
    k.m[1] = vshlq_n_s16(k.s[1], 5);
    k.d = k.c = f16(b.d);
}

constexpr int kPrefetchSuperBlocks = 8;

// RN tokens against one K-quant row, unpacking each super-block once. Per token
// and super-block: 16 sdots (one per sub-block), pairwise adds that leave the
// totals of four sub-blocks in one vector, times their scales; the integer sums
// then scale exactly as in the scalar kernel.
template <class Block, int RN>
void k_row(const uint8_t* w, const uint8_t* xq, size_t x_stride, int64_t n_in, float* y, int64_t ldy) {
    const auto* blocks = reinterpret_cast<const Block*>(w);
    const int64_t nb = n_in / 256;
    Q8RowView x[RN];
    for (int t = 0; t < RN; ++t) x[t] = q8_row_view(ActQuant::Q8_K, xq + size_t(t) * x_stride, n_in);
    float acc[RN] = {};
    KUnpacked k;
    KScalesNeon ks;
    for (int64_t b = 0; b < nb; ++b) {
        if constexpr (RN == 1)
            for (size_t off = 0; off < sizeof(Block); off += 64)
                __builtin_prefetch(reinterpret_cast<const char*>(blocks + b + kPrefetchSuperBlocks) + off);
        kunpack_neon(blocks[b], k);
        kscales_neon(blocks[b], ks);
        const int32x4_t s4[4] = {vmovl_s16(vget_low_s16(ks.s[0])), vmovl_high_s16(ks.s[0]),
                                 vmovl_s16(vget_low_s16(ks.s[1])), vmovl_high_s16(ks.s[1])};
        for (int t = 0; t < RN; ++t) {
            const int8_t* q = x[t].qs + 256 * b;
            int32x4_t isum = vdupq_n_s32(0);
            for (int g = 0; g < 4; ++g) {
                int32x4_t p[4];
                for (int i = 0; i < 4; ++i) p[i] = vdotq_s32(vdupq_n_s32(0), k.u[4 * g + i], vld1q_s8(q + 16 * (4 * g + i)));
                const int32x4_t sub = vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3]));  // sub-blocks 4g..4g+3
                isum = vmlaq_s32(isum, sub, s4[g]);
            }
            const int16x8_t bs0 = vld1q_s16(x[t].bsums + 16 * b), bs1 = vld1q_s16(x[t].bsums + 16 * b + 8);
            int32x4_t msum = vmull_s16(vget_low_s16(ks.m[0]), vget_low_s16(bs0));
            msum = vmlal_high_s16(msum, ks.m[0], bs0);
            msum = vmlal_s16(msum, vget_low_s16(ks.m[1]), vget_low_s16(bs1));
            msum = vmlal_high_s16(msum, ks.m[1], bs1);
            acc[t] += x[t].d[b] * (ks.d * float(vaddvq_s32(isum)) - ks.c * float(vaddvq_s32(msum)));
        }
    }
    for (int t = 0; t < RN; ++t) y[t * ldy] = acc[t];
}

constexpr int kKRN = 4;

template <class Block>
void k_gemm(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* xq, size_t x_stride, int64_t n_tok,
            int64_t n_in, float* y, int64_t ldy) {
    for (int64_t t = 0; t < n_tok; t += kKRN) {
        const uint8_t* xt = xq + size_t(t) * x_stride;
        float* yt = y + t * ldy;
        for (int64_t r = 0; r < n_rows; ++r) {
            const uint8_t* wr = w + size_t(r) * w_stride;
            switch (std::min<int64_t>(kKRN, n_tok - t)) {
                case 4: k_row<Block, 4>(wr, xt, x_stride, n_in, yt + r, ldy); break;
                case 3: k_row<Block, 3>(wr, xt, x_stride, n_in, yt + r, ldy); break;
                case 2: k_row<Block, 2>(wr, xt, x_stride, n_in, yt + r, ldy); break;
                default: k_row<Block, 1>(wr, xt, x_stride, n_in, yt + r, ldy); break;
            }
        }
    }
}

}  // namespace

const QuantKernels* neon_quant_kernels() {
    static const QuantKernels k{
        {quantize_q8_32, quantize_q8_32, quantize_q8_K},
        {
            legacy_gemm<block_q4_0>,
            legacy_gemm<block_q4_1>,
            legacy_gemm<block_q5_0>,
            legacy_gemm<block_q5_1>,
            legacy_gemm<block_q8_0>,
            k_gemm<block_q2_K>,
            k_gemm<block_q3_K>,
            k_gemm<block_q4_K>,
            k_gemm<block_q5_K>,
            k_gemm<block_q6_K>,
        }};
    return &k;
}

}  // namespace kiln::cpu

#else
namespace kiln::cpu {
const QuantKernels* neon_quant_kernels() { return nullptr; }
}  // namespace kiln::cpu
#endif
