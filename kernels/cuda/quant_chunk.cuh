#pragma once
// Device-side readers of the GGUF quant blocks (layouts: formats/quant_blocks.h),
// one struct per type, all speaking one shape: chunk c (32 consecutive
// elements) of a block as 32 signed 8-bit integers q packed four to a word,
// plus per 16-element half h a scale a[h] and offset o[h], so that
//     element j = a[j / 16] * q[j] + o[j / 16].
// Every block type fits that form (the K-quants' sub-block scales and mins
// are per 16 or per 32 elements), which lets one dp4a matrix-vector kernel and
// one dequantizing tensor-core kernel serve all of them.
//
// The types stored with a bias (Q4_0's q - 8, Q5_0's q - 16, Q3_K's q - 4,
// Q6_K's q - 32) keep q unsigned and move the bias into o (-8d, ...): a byte-wise
// subtraction (__vsub4) has no instruction of its own and costs ~4 a word, 32 a
// chunk, where o costs the dp4a kernel two multiply-adds (its activation sums come
// with the q8 scales). Those q are below 64, so they read the same as signed bytes.
//
// Alignment decides the loads: blocks whose size is a multiple of 16 (Q4_K, Q5_K,
// and Q3_K / Q6_K in their padded device slots: cuda_ops.h, device_bytes)
// are read in 16-byte pieces, multiples of 4 (Q4_1, Q5_1, Q2_K) in words, and the
// 2-byte aligned rest (Q4_0, Q5_0, Q8_0) as the aligned words that cover them
// (BlockWords).
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "formats/ggml_type.h"
#include "kernels/cuda/cuda_ops.h"

namespace kiln::cuda {

// For blocks whose size is a multiple of 4 (Q4_1, Q5_1, Q2_K): p is 4-byte aligned.
__device__ __forceinline__ uint32_t ld32a(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ __forceinline__ float ldh(const uint8_t* p) {
    return __half2float(*reinterpret_cast<const __half*>(p));
}
// A block of kBytes starting 2-byte aligned, as the aligned 32-bit words that
// cover it: kBytes / 4 + 1 loads instead of kBytes / 2 half-word loads (the
// decode kernels are bound by load instructions, not bytes). The last word may
// reach 2 bytes past the block (weights are allocated with slack).
template <int kBytes>
struct BlockWords {
    static constexpr int kWords = kBytes / 4 + 1;
    uint32_t w[kWords];
    int shift;  // bits from word 0's start to the block's first byte: 0 or 16
    __device__ __forceinline__ explicit BlockWords(const uint8_t* b) {
        const uintptr_t addr = reinterpret_cast<uintptr_t>(b);
        const uint32_t* p = reinterpret_cast<const uint32_t*>(addr & ~uintptr_t(3));
        shift = int(addr & 3u) * 8;
#pragma unroll
        for (int i = 0; i < kWords; ++i) w[i] = p[i];
    }
    // The 32 bits at byte 2 + 4i of the block (i + 1 < kWords).
    __device__ __forceinline__ uint32_t word_at2(int i) const { return __funnelshift_rc(w[i], w[i + 1], shift + 16); }
    // The 32 bits at byte 4i of the block (i + 1 < kWords).
    __device__ __forceinline__ uint32_t word_at0(int i) const { return __funnelshift_r(w[i], w[i + 1], shift); }
    __device__ __forceinline__ float half_at0() const {
        return __half2float(__ushort_as_half(uint16_t(__funnelshift_r(w[0], w[1], shift))));
    }
};
// 32 bytes at a 16-byte aligned p as eight words: two 16-byte loads.
struct Words32 {
    uint32_t w[8];
    __device__ __forceinline__ explicit Words32(const uint8_t* p) {
        const uint4* v = reinterpret_cast<const uint4*>(p);
        const uint4 a = v[0], b = v[1];
        w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w;
        w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
    }
};
// Bits 0..3 of h to bit 4 of bytes 0..3 (the fifth bit of Q5 quants).
__device__ __forceinline__ uint32_t spread4(uint32_t h) {
    return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}

// x = d * (q - 8) = d * q - 8d; low nibbles are elements 0..15, high nibbles 16..31.
struct Q4_0 {
    static constexpr int kBlock = 32, kBytes = 18;
    __device__ static void chunk(const uint8_t* b, int, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const BlockWords<kBytes> bw(b);
        const float d = bw.half_at0();
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t u = bw.word_at2(i);
            w[i] = int(u & 0x0F0F0F0Fu);
            w[4 + i] = int((u >> 4) & 0x0F0F0F0Fu);
        }
        a[0] = a[1] = d;
        o[0] = o[1] = -8.0f * d;
    }
};

// x = d * q + m.
struct Q4_1 {
    static constexpr int kBlock = 32, kBytes = 20;
    __device__ static void chunk(const uint8_t* b, int, int (&w)[8], float (&a)[2], float (&o)[2]) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t u = ld32a(b + 4 + 4 * i);
            w[i] = int(u & 0x0F0F0F0Fu);
            w[4 + i] = int((u >> 4) & 0x0F0F0F0Fu);
        }
        a[0] = a[1] = ldh(b);
        o[0] = o[1] = ldh(b + 2);
    }
};

// x = d * (q - 16) = d * q - 16d; the fifth bit of element j is bit j of qh.
struct Q5_0 {
    static constexpr int kBlock = 32, kBytes = 22;
    __device__ static void chunk(const uint8_t* b, int, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const BlockWords<kBytes> bw(b);
        const uint32_t qh = bw.word_at2(0);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t u = bw.word_at2(1 + i);
            w[i] = int((u & 0x0F0F0F0Fu) | spread4(qh >> (4 * i)));
            w[4 + i] = int(((u >> 4) & 0x0F0F0F0Fu) | spread4(qh >> (16 + 4 * i)));
        }
        a[0] = a[1] = bw.half_at0();
        o[0] = o[1] = -16.0f * a[0];
    }
};

// x = d * q + m, bits as Q5_0.
struct Q5_1 {
    static constexpr int kBlock = 32, kBytes = 24;
    __device__ static void chunk(const uint8_t* b, int, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const uint32_t qh = ld32a(b + 4);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t u = ld32a(b + 8 + 4 * i);
            w[i] = int((u & 0x0F0F0F0Fu) | spread4(qh >> (4 * i)));
            w[4 + i] = int(((u >> 4) & 0x0F0F0F0Fu) | spread4(qh >> (16 + 4 * i)));
        }
        a[0] = a[1] = ldh(b);
        o[0] = o[1] = ldh(b + 2);
    }
};

struct Q8_0 {
    static constexpr int kBlock = 32, kBytes = 34;
    __device__ static void chunk(const uint8_t* b, int, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const BlockWords<kBytes> bw(b);
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = int(bw.word_at2(i));
        a[0] = a[1] = bw.half_at0();
        o[0] = o[1] = 0.0f;
    }
};

// Chunk c of 8: 2-bit q in qs[32 * (c / 4) + l] at bits 2 * (c % 4); the
// 16-element sub-blocks 2c, 2c+1 have scale (low nibble) and min (high nibble).
struct Q2_K {
    static constexpr int kBlock = 256, kBytes = 84;
    __device__ static void chunk(const uint8_t* b, int c, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const uint8_t* qs = b + 16 + 32 * (c >> 2);
        const int s = 2 * (c & 3);
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = int((ld32a(qs + 4 * i) >> s) & 0x03030303u);
        const float d = ldh(b + 80), dmin = ldh(b + 82);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const uint8_t sc = b[2 * c + h];
            a[h] = d * float(sc & 0xF);
            o[h] = -dmin * float(sc >> 4);
        }
    }
};

// Low 2 bits as Q2_K; high bit of element 32c + l is hmask[l] bit c, and a
// clear high bit means q - 4. Signed 6-bit scales per 16 elements. In device
// memory each 110-byte block sits in a 112-byte slot (cuda_ops.h: device_bytes),
// 16-byte aligned: a chunk is five 16-byte loads (hmask, its quants, scales and d).
struct Q3_K {
    static constexpr int kBlock = 256, kBytes = int(kQ3KDeviceBytes);
    // Scale j from the scale words (bytes 0-3, 4-7, 8-11 of the 12).
    __device__ static int scale(uint32_t s0, uint32_t s1, uint32_t s2, int j) {
        const int sh = 8 * (j & 3);
        const uint32_t byte = ((j & 4) ? s1 : s0) >> sh;
        const int low = j < 8 ? int(byte & 0xF) : int((byte >> 4) & 0xF);
        const int high = int((s2 >> (sh + 2 * (j >> 2))) & 3);
        return (low | (high << 4)) - 32;
    }
    __device__ static void chunk(const uint8_t* b, int c, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const Words32 hm(b), qs(b + 32 + 32 * (c >> 2));
        const uint4 tail = *reinterpret_cast<const uint4*>(b + 96);
        const int s = 2 * (c & 3);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t low = (qs.w[i] >> s) & 0x03030303u;
            const uint32_t hb = (hm.w[i] >> c) & 0x01010101u;
            w[i] = int(low | (hb << 2));
        }
        const float d = __half2float(__ushort_as_half(uint16_t(tail.w & 0xFFFFu)));
        a[0] = d * float(scale(tail.x, tail.y, tail.z, 2 * c));
        a[1] = d * float(scale(tail.x, tail.y, tail.z, 2 * c + 1));
        o[0] = -4.0f * a[0];
        o[1] = -4.0f * a[1];
    }
};

// The 16-byte head of a Q4_K/Q5_K block (d, dmin, the 12 packed scale bytes) as one
// load; scale and min of sub-block j from it (get_scale_min_k4 on registers).
struct KHead {
    float d, dmin;
    uint32_t s0, s1, s2;  // scale bytes 0-3, 4-7, 8-11
    __device__ __forceinline__ explicit KHead(const uint8_t* b) {
        const uint4 h = *reinterpret_cast<const uint4*>(b);
        const __half2 dm = *reinterpret_cast<const __half2*>(&h.x);
        d = __low2float(dm);
        dmin = __high2float(dm);
        s0 = h.y;
        s1 = h.z;
        s2 = h.w;
    }
    __device__ __forceinline__ void scale_min(int j, float* sc, float* m) const {
        const int sh = 8 * (j & 3);
        if (j < 4) {
            *sc = float((s0 >> sh) & 63);
            *m = float((s1 >> sh) & 63);
        } else {
            *sc = float(((s2 >> sh) & 0xF) | (((s0 >> sh) >> 6 & 3) << 4));
            *m = float(((s2 >> sh) >> 4 & 0xF) | (((s1 >> sh) >> 6 & 3) << 4));
        }
    }
};

// Chunk c: nibble (c odd: high) of qs[32 * (c / 2) + l]; x = d*sc*q - dmin*m.
struct Q4_K {
    static constexpr int kBlock = 256, kBytes = 144;
    // Blocks of 144 bytes start 16-byte aligned in every CUDA buffer (rows are whole
    // blocks, buffers start allocations): a chunk is three 16-byte loads, the block's
    // head and its 32 quant bytes.
    __device__ static void chunk(const uint8_t* b, int c, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const KHead head(b);
        const Words32 qs(b + 16 + 32 * (c >> 1));
        const int s = 4 * (c & 1);
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = int((qs.w[i] >> s) & 0x0F0F0F0Fu);
        float sc, m;
        head.scale_min(c, &sc, &m);
        a[0] = a[1] = head.d * sc;
        o[0] = o[1] = -head.dmin * m;
    }
};

// As Q4_K plus the fifth bit of element 32c + l in qh[l] bit c. 176-byte blocks
// start 16-byte aligned too: five 16-byte loads a chunk.
struct Q5_K {
    static constexpr int kBlock = 256, kBytes = 176;
    __device__ static void chunk(const uint8_t* b, int c, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const KHead head(b);
        const Words32 qh(b + 16), qs(b + 48 + 32 * (c >> 1));
        const int s = 4 * (c & 1);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t hb = (qh.w[i] >> c) & 0x01010101u;
            w[i] = int(((qs.w[i] >> s) & 0x0F0F0F0Fu) | (hb << 4));
        }
        float sc, m;
        head.scale_min(c, &sc, &m);
        a[0] = a[1] = head.d * sc;
        o[0] = o[1] = -head.dmin * m;
    }
};

// Chunk c = 4h + k of the 128-halves h: low nibble (k < 2) or high nibble of
// ql[64h + 32(k & 1) + l], top two bits at 2k of qh[32h + l]; x = d*sc*(q - 32).
// In device memory each 210-byte block sits in a 224-byte slot (cuda_ops.h:
// kQ6KDeviceBytes), so the quants are 16-byte loads.
struct Q6_K {
    static constexpr int kBlock = 256, kBytes = int(kQ6KDeviceBytes);
    __device__ static void chunk(const uint8_t* b, int c, int (&w)[8], float (&a)[2], float (&o)[2]) {
        const int h = c >> 2, k = c & 3;
        const Words32 ql(b + 64 * h + 32 * (k & 1)), qh(b + 128 + 32 * h);
        const int sl = 4 * (k >> 1), shh = 2 * k;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t low = (ql.w[i] >> sl) & 0x0F0F0F0Fu;
            const uint32_t high = ((qh.w[i] >> shh) & 0x03030303u) << 4;
            w[i] = int(low | high);
        }
        const float d = ldh(b + 208);
        const char2 sc = *reinterpret_cast<const char2*>(b + 192 + 2 * c);
        a[0] = d * float(sc.x);
        a[1] = d * float(sc.y);
        o[0] = -32.0f * a[0];
        o[1] = -32.0f * a[1];
    }
};

// 32 dequantized floats of chunk `c` (elements 32c..32c+31) of a block-quantized row.
template <class T>
__device__ __forceinline__ void dequant32(const uint8_t* row, int64_t c, int64_t /*n_in*/, float (&out)[32]) {
    constexpr int kChunks = T::kBlock / 32;
    int w[8];
    float a[2], o[2];
    T::chunk(row + (c / kChunks) * T::kBytes, int(c % kChunks), w, a, o);
#pragma unroll
    for (int j = 0; j < 32; ++j) {
        const int q = int(int8_t(uint32_t(w[j >> 2]) >> (8 * (j & 3))));
        out[j] = a[j >> 4] * float(q) + o[j >> 4];
    }
}

// Plain float types: element i of a row; elements past n_in read as 0.
struct F32 {
    __device__ static float at(const uint8_t* row, int64_t i) { return reinterpret_cast<const float*>(row)[i]; }
};
struct F16 {
    __device__ static float at(const uint8_t* row, int64_t i) {
        return __half2float(reinterpret_cast<const __half*>(row)[i]);
    }
};
struct BF16 {
    __device__ static float at(const uint8_t* row, int64_t i) {
        return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(row)[i]);
    }
};
template <class T>
__device__ __forceinline__ void dequant32_float(const uint8_t* row, int64_t c, int64_t n_in, float (&out)[32]) {
#pragma unroll
    for (int j = 0; j < 32; ++j) {
        const int64_t i = c * 32 + j;
        out[j] = i < n_in ? T::at(row, i) : 0.0f;
    }
}

template <class T>
inline constexpr bool kBlockQuant = !std::is_same_v<T, F32> && !std::is_same_v<T, F16> && !std::is_same_v<T, BF16>;

// One entry point per weight type for the dequantizing kernels.
template <class T>
struct Dequant {
    __device__ static void run(const uint8_t* row, int64_t c, int64_t n_in, float (&out)[32]) {
        dequant32<T>(row, c, n_in, out);
    }
};
template <>
struct Dequant<F32> {
    __device__ static void run(const uint8_t* row, int64_t c, int64_t n_in, float (&out)[32]) {
        dequant32_float<F32>(row, c, n_in, out);
    }
};
template <>
struct Dequant<F16> {
    __device__ static void run(const uint8_t* row, int64_t c, int64_t n_in, float (&out)[32]) {
        dequant32_float<F16>(row, c, n_in, out);
    }
};
template <>
struct Dequant<BF16> {
    __device__ static void run(const uint8_t* row, int64_t c, int64_t n_in, float (&out)[32]) {
        dequant32_float<BF16>(row, c, n_in, out);
    }
};

template <class T>
struct Tag {
    using type = T;
};
// Calls f(Tag<T>{}) with the reader type T of `type`; false when the type has none.
template <class F>
bool dispatch_weight_type(GgmlType type, F&& f) {
    switch (type) {
        case GgmlType::F32: f(Tag<F32>{}); return true;
        case GgmlType::F16: f(Tag<F16>{}); return true;
        case GgmlType::BF16: f(Tag<BF16>{}); return true;
        case GgmlType::Q4_0: f(Tag<Q4_0>{}); return true;
        case GgmlType::Q4_1: f(Tag<Q4_1>{}); return true;
        case GgmlType::Q5_0: f(Tag<Q5_0>{}); return true;
        case GgmlType::Q5_1: f(Tag<Q5_1>{}); return true;
        case GgmlType::Q8_0: f(Tag<Q8_0>{}); return true;
        case GgmlType::Q2_K: f(Tag<Q2_K>{}); return true;
        case GgmlType::Q3_K: f(Tag<Q3_K>{}); return true;
        case GgmlType::Q4_K: f(Tag<Q4_K>{}); return true;
        case GgmlType::Q5_K: f(Tag<Q5_K>{}); return true;
        case GgmlType::Q6_K: f(Tag<Q6_K>{}); return true;
        default: return false;
    }
}

}  // namespace kiln::cuda
