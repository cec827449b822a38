// Scalar integer dot products of every quantized weight type with its 8-bit
// activation blocks (q8_act.h): the fallback on any CPU and the oracle the SIMD
// kernels are tested against. Integer sums per block are exact, so a SIMD
// kernel differs from these only in the order of its float additions.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/fp16.h"
#include "formats/quant_blocks.h"
#include "kernels/cpu/cpu_kernels.h"

namespace kiln::cpu {
namespace {
#include "kernels/cpu/kquant_scales.h"

float fp16_round(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

// A rounded value as int8, saturating as the SIMD packs do (a NaN, whose float
// to int conversion is undefined in C++, becomes -128 like cvtps2dq's INT_MIN).
int to_int8(float r) {
    if (r >= 127.f) return 127;
    if (r >= -128.f) return int(r);
    return -128;
}

// llama.cpp's quantize_row_q8_0/q8_1 (its AVX2 form): id = 127 / amax, values
// rounded to nearest-even, d = amax / 127 stored as fp16, s = d * sum as fp16.
void quantize_q8_32(const float* x, int64_t n, uint8_t* row) {
    const int64_t nb = n / 32;
    auto* qs = reinterpret_cast<int8_t*>(row);
    auto* d = reinterpret_cast<float*>(row + n);
    for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float db = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            const int q = to_int8(std::nearbyint(xb[j] * id));
            qs[32 * b + j] = int8_t(q);
            sum += q;
        }
        d[b] = fp16_round(db);
        d[nb + b] = fp16_round(db * float(sum));
        reinterpret_cast<int32_t*>(d + 2 * nb)[b] = sum;
    }
}

// llama.cpp's quantize_row_q8_K: the value of largest magnitude maps to -127
// (iscale = -127 / max), nearest-even rounding, clamped at 127; d = 1 / iscale.
void quantize_q8_K(const float* x, int64_t n, uint8_t* row) {
    const int64_t nb = n / 256;
    auto* qs = reinterpret_cast<int8_t*>(row);
    auto* d = reinterpret_cast<float*>(row + n);
    auto* bsums = reinterpret_cast<int16_t*>(d + nb);
    for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + 256 * b;
        int8_t* q = qs + 256 * b;
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; ++j)
            if (std::fabs(xb[j]) > amax) {
                amax = std::fabs(xb[j]);
                max = xb[j];
            }
        if (amax == 0.0f) {
            std::memset(q, 0, 256);
            std::memset(bsums + 16 * b, 0, 16 * sizeof(int16_t));
            d[b] = 0.0f;
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; ++j) q[j] = int8_t(to_int8(std::nearbyint(iscale * xb[j])));
        for (int j = 0; j < 16; ++j) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += q[16 * j + i];
            bsums[16 * b + j] = int16_t(sum);
        }
        d[b] = 1 / iscale;
    }
}

// ---- legacy types: 32-value blocks against Q8_0 / Q8_1 -----------------------

// The 32 quants of a legacy block in element order (signed for Q4_0/Q5_0/Q8_0,
// unsigned for Q4_1/Q5_1) and its float scale and min.
struct Legacy {
    int q[32];
    float d, m;
};
void nibbles(const uint8_t* qs, int* q) {
    for (int j = 0; j < 16; ++j) {
        q[j] = qs[j] & 0xF;
        q[j + 16] = qs[j] >> 4;
    }
}
uint32_t high_bits(const uint8_t* qh) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return h;
}
void unpack(const block_q4_0& b, Legacy& l) {
    nibbles(b.qs, l.q);
    for (int& v : l.q) v -= 8;
    l.d = fp16_to_fp32(b.d);
}
void unpack(const block_q4_1& b, Legacy& l) {
    nibbles(b.qs, l.q);
    l.d = fp16_to_fp32(b.d);
    l.m = fp16_to_fp32(b.m);
}
void unpack(const block_q5_0& b, Legacy& l) {
    nibbles(b.qs, l.q);
    const uint32_t h = high_bits(b.qh);
    for (int j = 0; j < 32; ++j) l.q[j] = (l.q[j] | int(((h >> j) & 1) << 4)) - 16;
    l.d = fp16_to_fp32(b.d);
}
void unpack(const block_q5_1& b, Legacy& l) {
    nibbles(b.qs, l.q);
    const uint32_t h = high_bits(b.qh);
    for (int j = 0; j < 32; ++j) l.q[j] |= int(((h >> j) & 1) << 4);
    l.d = fp16_to_fp32(b.d);
    l.m = fp16_to_fp32(b.m);
}
void unpack(const block_q8_0& b, Legacy& l) {
    for (int j = 0; j < 32; ++j) l.q[j] = b.qs[j];
    l.d = fp16_to_fp32(b.d);
}

// Q4_1/Q5_1 carry a min: w = d*q + m, so w . x = d*dx*(q . qx) + m*s.
template <class Block> constexpr bool kHasMin = false;
template <> constexpr bool kHasMin<block_q4_1> = true;
template <> constexpr bool kHasMin<block_q5_1> = true;

template <class Block>
float dot_legacy(const uint8_t* w, const Q8RowView& x, int64_t n) {
    const auto* blocks = reinterpret_cast<const Block*>(w);
    float sum = 0.0f;
    Legacy l;
    for (int64_t b = 0; b < n / 32; ++b) {
        unpack(blocks[b], l);
        int isum = 0;
        for (int j = 0; j < 32; ++j) isum += l.q[j] * x.qs[32 * b + j];
        sum += float(isum) * (l.d * x.d[b]);
        if constexpr (kHasMin<Block>) sum += l.m * x.s[b];
    }
    return sum;
}

// ---- K-quants: 256-value blocks against Q8_K ----------------------------------

template <class Block>
float dot_k(const uint8_t* w, const Q8RowView& x, int64_t n) {
    const auto* blocks = reinterpret_cast<const Block*>(w);
    float sum = 0.0f;
    uint8_t u[256];
    KScales k;
    for (int64_t b = 0; b < n / 256; ++b) {
        kunpack(blocks[b], u);
        kscales(blocks[b], k);
        const int8_t* q = x.qs + 256 * b;
        int isum = 0, msum = 0;
        for (int j = 0; j < 16; ++j) {
            int sub = 0;
            for (int i = 0; i < 16; ++i) sub += int(u[16 * j + i]) * q[16 * j + i];
            isum += k.s[j] * sub;
            msum += k.m[j] * x.bsums[16 * b + j];
        }
        sum += x.d[b] * (k.d * float(isum) - k.c * float(msum));
    }
    return sum;
}

template <float (*Dot)(const uint8_t*, const Q8RowView&, int64_t), ActQuant kAct>
void gemm(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* xq, size_t x_stride, int64_t n_tok,
          int64_t n_in, float* y, int64_t ldy) {
    for (int64_t t = 0; t < n_tok; ++t) {
        const Q8RowView x = q8_row_view(kAct, xq + size_t(t) * x_stride, n_in);
        for (int64_t r = 0; r < n_rows; ++r) y[t * ldy + r] = Dot(w + size_t(r) * w_stride, x, n_in);
    }
}

}  // namespace

const QuantKernels& scalar_quant_kernels() {
    static const QuantKernels k{
        {quantize_q8_32, quantize_q8_32, quantize_q8_K},
        {
            gemm<dot_legacy<block_q4_0>, ActQuant::Q8_0>,
            gemm<dot_legacy<block_q4_1>, ActQuant::Q8_1>,
            gemm<dot_legacy<block_q5_0>, ActQuant::Q8_0>,
            gemm<dot_legacy<block_q5_1>, ActQuant::Q8_1>,
            gemm<dot_legacy<block_q8_0>, ActQuant::Q8_0>,
            gemm<dot_k<block_q2_K>, ActQuant::Q8_K>,
            gemm<dot_k<block_q3_K>, ActQuant::Q8_K>,
            gemm<dot_k<block_q4_K>, ActQuant::Q8_K>,
            gemm<dot_k<block_q5_K>, ActQuant::Q8_K>,
            gemm<dot_k<block_q6_K>, ActQuant::Q8_K>,
        }};
    return k;
}

}  // namespace kiln::cpu
