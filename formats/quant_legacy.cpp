// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: 32-weight blocks with one fp16 scale
// (and a min for the _1 types). The quantizers make the same scale choice and
// the same rounding as ggml's quantize_row_*_ref, so re-quantizing reproduces
// llama-quantize's bytes; the casts to int8/uint8 truncate on purpose, as there.
#include <algorithm>
#include <cfloat>

#include "formats/quant_blocks.h"
#include "formats/quant_rows.h"

namespace kiln {

namespace {

// The signed value of largest magnitude (first one on ties) and its magnitude.
void signed_absmax(const float* x, int n, float& amax, float& max) {
    amax = 0.0f;
    max = 0.0f;
    for (int j = 0; j < n; ++j) {
        const float v = x[j];
        if (amax < std::fabs(v)) {
            amax = std::fabs(v);
            max = v;
        }
    }
}

void min_max(const float* x, int n, float& min, float& max) {
    min = FLT_MAX;
    max = -FLT_MAX;
    for (int j = 0; j < n; ++j) {
        min = std::min(min, x[j]);
        max = std::max(max, x[j]);
    }
}

uint32_t load_qh(const uint8_t qh[4]) {
    return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

void store_qh(uint8_t qh[4], uint32_t v) {
    for (int k = 0; k < 4; ++k) qh[k] = uint8_t(v >> (8 * k));
}

}  // namespace

// ---- Q4_0 -----------------------------------------------------------------------

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_0*>(src);
    for (int64_t i = 0; i < n / QK4_0; ++i, dst += QK4_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            dst[j] = float((b[i].qs[j] & 0xF) - 8) * d;
            dst[j + QK4_0 / 2] = float((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void quantize_row_q4_0(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<block_q4_0*>(dst);
    for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
        float amax, max;
        signed_absmax(x, QK4_0, amax, max);
        // d is negative when the extreme is positive: the extreme maps to q = 0
        // (value -8 * d), using the asymmetric range's larger side.
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const int q0 = std::min(15, int(int8_t(x[j] * id + 8.5f)));
            const int q1 = std::min(15, int(int8_t(x[j + QK4_0 / 2] * id + 8.5f)));
            b[i].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

// ---- Q4_1 -----------------------------------------------------------------------

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_1*>(src);
    for (int64_t i = 0; i < n / QK4_1; ++i, dst += QK4_1) {
        const float d = fp16_to_fp32(b[i].d);
        const float m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            dst[j] = float(b[i].qs[j] & 0xF) * d + m;
            dst[j + QK4_1 / 2] = float(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void quantize_row_q4_1(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<block_q4_1*>(dst);
    for (int64_t i = 0; i < n / QK4_1; ++i, x += QK4_1) {
        float min, max;
        min_max(x, QK4_1, min, max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const int q0 = std::min(15, int(int8_t((x[j] - min) * id + 0.5f)));
            const int q1 = std::min(15, int(int8_t((x[j + QK4_1 / 2] - min) * id + 0.5f)));
            b[i].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

// ---- Q5_0 -----------------------------------------------------------------------

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_0*>(src);
    for (int64_t i = 0; i < n / QK5_0; ++i, dst += QK5_0) {
        const float d = fp16_to_fp32(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int h0 = int((qh >> j) & 1) << 4;
            const int h1 = int((qh >> (j + 16)) & 1) << 4;
            dst[j] = float(((b[i].qs[j] & 0xF) | h0) - 16) * d;
            dst[j + QK5_0 / 2] = float(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void quantize_row_q5_0(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<block_q5_0*>(dst);
    for (int64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
        float amax, max;
        signed_absmax(x, QK5_0, amax, max);
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int q0 = std::min(31, int(int8_t(x[j] * id + 16.5f)));
            const int q1 = std::min(31, int(int8_t(x[j + QK5_0 / 2] * id + 16.5f)));
            b[i].qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= uint32_t((q0 >> 4) & 1) << j;
            qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
        }
        store_qh(b[i].qh, qh);
    }
}

// ---- Q5_1 -----------------------------------------------------------------------

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_1*>(src);
    for (int64_t i = 0; i < n / QK5_1; ++i, dst += QK5_1) {
        const float d = fp16_to_fp32(b[i].d);
        const float m = fp16_to_fp32(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int h0 = int((qh >> j) & 1) << 4;
            const int h1 = int((qh >> (j + 16)) & 1) << 4;
            dst[j] = float((b[i].qs[j] & 0xF) | h0) * d + m;
            dst[j + QK5_1 / 2] = float((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void quantize_row_q5_1(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<block_q5_1*>(dst);
    for (int64_t i = 0; i < n / QK5_1; ++i, x += QK5_1) {
        float min, max;
        min_max(x, QK5_1, min, max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; ++j) {
            // No clamp (as in ggml): (x - min) * id <= 31 up to rounding of id.
            const int q0 = uint8_t((x[j] - min) * id + 0.5f);
            const int q1 = uint8_t((x[j + QK5_1 / 2] - min) * id + 0.5f);
            b[i].qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= uint32_t((q0 >> 4) & 1) << j;
            qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
        }
        store_qh(b[i].qh, qh);
    }
}

// ---- Q8_0 / Q8_1 ----------------------------------------------------------------

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_0*>(src);
    for (int64_t i = 0; i < n / QK8_0; ++i, dst += QK8_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; ++j) dst[j] = float(b[i].qs[j]) * d;
    }
}

void quantize_row_q8_0(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = int8_t(std::round(x[j] * id));
    }
}

void dequantize_row_q8_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_1*>(src);
    for (int64_t i = 0; i < n / QK8_1; ++i, dst += QK8_1) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_1; ++j) dst[j] = float(b[i].qs[j]) * d;
    }
}

void quantize_row_q8_1(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            b[i].qs[j] = int8_t(std::round(x[j] * id));
            sum += b[i].qs[j];
        }
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16(float(sum) * d);
    }
}

}  // namespace kiln
