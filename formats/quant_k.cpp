// K-quants: 256-weight super-blocks whose sub-block scales are themselves
// quantized against one or two fp16 super-scales. Quantizers follow ggml's
// quantize_row_*_ref (no importance matrix), which is what llama-quantize
// runs for these types without --imatrix.
#include <algorithm>

#include "formats/quant_blocks.h"
#include "formats/quant_rows.h"

namespace kiln {

using quant_detail::make_q3_quants;
using quant_detail::make_qkx2_quants;
using quant_detail::make_qx_quants;
using quant_detail::nearest_int;

namespace {

// Below this magnitude a super-block is stored as zeros (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Packs 2-bit levels L[0..255] the way Q2_K and Q3_K store them: per 128
// elements, 32 bytes whose bit pairs 2k..2k+1 hold element l + 32k.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

int two_bits(const uint8_t* qs, int e) {
    return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// Shared by Q4_K and Q5_K: per 32-element sub-block, a qkx2 search with the
// weights ggml uses (rms of the sub-block + |x|), then 6-bit scales and mins
// against d = max_scale/63 and dmin = max_min/63. Fills scales[12], d, dmin
// and the final levels L (0..nmax).
template <class Block>
void quantize_scales_mins_k4(const float* x, Block& b, uint8_t* L, int nmax, float rmin, int nstep) {
    float weights[32];
    uint8_t Laux[32];
    float scales[QK_K / 32], mins[QK_K / 32];
    float max_scale = 0, max_min = 0;  // scales are never negative once the min is taken out
    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep,
                                     false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    std::memset(b.scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; ++j) {
        const uint8_t ls = uint8_t(std::min(63, int(uint8_t(nearest_int(inv_scale * scales[j])))));
        const uint8_t lm = uint8_t(std::min(63, int(uint8_t(nearest_int(inv_min * mins[j])))));
        if (j < 4) {
            b.scales[j] = ls;
            b.scales[j + 4] = lm;
        } else {
            b.scales[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
            b.scales[j - 4] |= uint8_t((ls >> 4) << 6);
            b.scales[j] |= uint8_t((lm >> 4) << 6);
        }
    }
    b.d = fp32_to_fp16(max_scale / 63.f);
    b.dmin = fp32_to_fp16(max_min / 63.f);
    // Re-round every element against the scales as stored.
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, b.scales, &sc, &m);
        const float d = fp16_to_fp32(b.d) * sc;
        if (!d) continue;
        const float dm = fp16_to_fp32(b.dmin) * m;
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = uint8_t(std::max(0, std::min(nmax, l)));
        }
    }
}

}  // namespace

// ---- Q2_K -----------------------------------------------------------------------

void dequantize_row_q2_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q2_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        for (int e = 0; e < QK_K; ++e) {
            const uint8_t sc = b[i].scales[e / 16];
            dst[e] = d * float(sc & 0xF) * float(two_bits(b[i].qs, e)) - dmin * float(sc >> 4);
        }
    }
}

void quantize_row_q2_K(const float* x, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q2_K*>(dst);
    constexpr float q4scale = 15.f;
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        block_q2_K& b = blocks[i];
        uint8_t L[QK_K], Laux[16];
        float weights[16], scales[QK_K / 16], mins[QK_K / 16];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) b.scales[j] = uint8_t(nearest_int(iscale * scales[j]));
            b.d = fp32_to_fp16(max_scale / q4scale);
        } else {
            std::memset(b.scales, 0, sizeof b.scales);
            b.d = fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) b.scales[j] |= uint8_t(nearest_int(iscale * mins[j]) << 4);
            b.dmin = fp32_to_fp16(max_min / q4scale);
        } else {
            b.dmin = fp32_to_fp16(0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = fp16_to_fp32(b.d) * float(b.scales[j] & 0xF);
            if (!d) continue;
            const float dm = fp16_to_fp32(b.dmin) * float(b.scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = uint8_t(std::max(0, std::min(3, l)));
            }
        }
        pack_2bit(L, b.qs);
    }
}

// ---- Q3_K -----------------------------------------------------------------------

void dequantize_row_q3_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q3_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d_all = fp16_to_fp32(b[i].d);
        for (int e = 0; e < QK_K; ++e) {
            const float dl = d_all * float(q3_K_scale(b[i].scales, e / 16));
            const bool high = (b[i].hmask[e % 32] >> (e / 32)) & 1;
            dst[e] = dl * float(two_bits(b[i].qs, e) - (high ? 0 : 4));
        }
    }
}

void quantize_row_q3_K(const float* x, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q3_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        block_q3_K& b = blocks[i];
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
            const float scale = std::fabs(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        std::memset(b.scales, 0, K_SCALE_SIZE);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                int l = int(int8_t(nearest_int(iscale * scales[j])));
                l = std::max(-32, std::min(31, l)) + 32;
                if (j < 8)
                    b.scales[j] = uint8_t(l & 0xF);
                else
                    b.scales[j - 8] |= uint8_t((l & 0xF) << 4);
                b.scales[j % 4 + 8] |= uint8_t((l >> 4) << (2 * (j / 4)));
            }
            b.d = fp32_to_fp16(1 / iscale);
        } else {
            b.d = fp32_to_fp16(0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = fp16_to_fp32(b.d) * float(q3_K_scale(b.scales, j));
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = int8_t(std::max(-4, std::min(3, l)) + 4);
            }
        }
        // The high bit of element e goes to hmask[e % 32], bit e / 32.
        uint8_t low[QK_K];
        std::memset(b.hmask, 0, sizeof b.hmask);
        for (int e = 0; e < QK_K; ++e) {
            int l = L[e];
            if (l > 3) {
                b.hmask[e % 32] |= uint8_t(1 << (e / 32));
                l -= 4;
            }
            low[e] = uint8_t(l);
        }
        pack_2bit(low, b.qs);
    }
}

// ---- Q4_K -----------------------------------------------------------------------

void dequantize_row_q4_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        const uint8_t* q = b[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(j / 32, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(j / 32 + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *dst++ = d1 * float(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *dst++ = d2 * float(q[l] >> 4) - m2;
        }
    }
}

void quantize_row_q4_K(const float* x, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q4_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        uint8_t L[QK_K];
        quantize_scales_mins_k4(x, blocks[i], L, 15, -1.f, 20);
        uint8_t* q = blocks[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
    }
}

// ---- Q5_K -----------------------------------------------------------------------

void dequantize_row_q5_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        const uint8_t* ql = b[i].qs;
        const uint8_t* qh = b[i].qh;
        for (int j = 0; j < QK_K; j += 64, ql += 32) {
            const int bit = j / 32;  // elements j..j+31 use qh bit j/32, the next 32 the bit above
            uint8_t sc, m;
            get_scale_min_k4(j / 32, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(j / 32 + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *dst++ = d1 * float((ql[l] & 0xF) + (((qh[l] >> bit) & 1) << 4)) - m1;
            for (int l = 0; l < 32; ++l) *dst++ = d2 * float((ql[l] >> 4) + (((qh[l] >> (bit + 1)) & 1) << 4)) - m2;
        }
    }
}

void quantize_row_q5_K(const float* x, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q5_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        block_q5_K& b = blocks[i];
        uint8_t L[QK_K];
        quantize_scales_mins_k4(x, b, L, 31, -0.5f, 15);
        std::memset(b.qh, 0, sizeof b.qh);
        uint8_t* ql = b.qs;
        for (int j = 0; j < QK_K; j += 64, ql += 32) {
            const int bit = j / 32;
            for (int l = 0; l < 32; ++l) {
                const int l1 = L[j + l], l2 = L[j + l + 32];
                b.qh[l] |= uint8_t(((l1 >> 4) << bit) | ((l2 >> 4) << (bit + 1)));
                ql[l] = uint8_t((l1 & 0xF) | ((l2 & 0xF) << 4));
            }
        }
    }
}

// ---- Q6_K -----------------------------------------------------------------------

void dequantize_row_q6_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q6_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d = fp16_to_fp32(b[i].d);
        for (int h = 0; h < 2; ++h) {  // two halves of 128
            const uint8_t* ql = b[i].ql + 64 * h;
            const uint8_t* qh = b[i].qh + 32 * h;
            const int8_t* sc = b[i].scales + 8 * h;
            float* y = dst + 128 * h;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * float(sc[is]) * float(q1);
                y[l + 32] = d * float(sc[is + 2]) * float(q2);
                y[l + 64] = d * float(sc[is + 4]) * float(q3);
                y[l + 96] = d * float(sc[is + 6]) * float(q4);
            }
        }
    }
}

void quantize_row_q6_K(const float* x, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q6_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        block_q6_K& b = blocks[i];
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
            scales[ib] = scale;
            if (std::fabs(scale) > max_abs_scale) {
                max_abs_scale = std::fabs(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < kGroupMaxEps) {
            std::memset(&b, 0, sizeof b);
            continue;
        }
        const float iscale = -128.f / max_scale;
        b.d = fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib)
            b.scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = fp16_to_fp32(b.d) * float(b.scales[j]);
            if (!d) continue;  // keeps the levels of the search, as ggml does
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = int8_t(std::max(-32, std::min(31, l)) + 32);
            }
        }
        for (int h = 0; h < 2; ++h) {
            const int8_t* Lh = L + 128 * h;
            uint8_t* ql = b.ql + 64 * h;
            uint8_t* qh = b.qh + 32 * h;
            for (int l = 0; l < 32; ++l) {
                ql[l] = uint8_t((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
                ql[l + 32] = uint8_t((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
                qh[l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

// ---- Q8_K -----------------------------------------------------------------------

void dequantize_row_q8_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K)
        for (int j = 0; j < QK_K; ++j) dst[j] = b[i].d * float(b[i].qs[j]);
}

void quantize_row_q8_K(const float* x, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        block_q8_K& b = blocks[i];
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            std::memset(&b, 0, sizeof b);
            continue;
        }
        // The extreme maps to -127 exactly, and nothing can round past 127.
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) b.qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += b.qs[16 * j + ii];
            b.bsums[j] = int16_t(sum);
        }
        b.d = 1 / iscale;
    }
}

}  // namespace kiln
