#pragma once
// x86 integer dot kernels, one source compiled three times: by quant_dot_avx2.cpp
// (-mavx2 -mfma -mf16c), quant_dot_avxvnni.cpp (plus AVX-VNNI, whose vpdpbusd
// does in one instruction what maddubs + madd do in two) and quant_dot_avx512.cpp
// (AVX-512 VL/BW/VNNI: also 512-bit vectors and 32 registers for bigger tiles). Included inside an unnamed namespace
// so the two compilations never merge into one symbol.
//
// Matrix-vector and matrix-matrix share one shape: a micro-kernel takes RM
// weight rows x RN tokens, unpacks each weight block to int8 once and reuses
// it for all RN tokens, keeping RM * RN accumulators in registers.
// The including file includes <immintrin.h>, <algorithm>, <cmath>, <cstring>, <vector>,
// formats/quant_blocks.h and kernels/cpu/q8_act.h before opening the namespace,
// then kquant_scales.h and this file inside it.

// kAvx512: 512-bit vectors and 32 registers (bigger tiles, block pairs, packs).
// kVnni: vpdpbusd on 256-bit vectors, from AVX-512 VNNI (+VL) or from AVX-VNNI
// (quant_dot_avxvnni.cpp: the VEX form on CPUs without AVX-512).
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
constexpr bool kAvx512 = true;
#else
constexpr bool kAvx512 = false;
#endif
#if (defined(__AVX512VNNI__) && defined(__AVX512VL__)) || defined(__AVXVNNI__)
constexpr bool kVnni = true;
#else
constexpr bool kVnni = false;
#endif

// acc + the sums of four u8 x s8 products per int32 lane.
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// ---- activation quantizers (same rounding as the scalar ones, lane by lane) --

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

inline float hsum_f32(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The horizontal sums of four vectors, in order, in one: a tile's four rows
// for one token end as one store instead of four reductions.
inline __m128 hsum_4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);  // per lane: a, b, c, d partial sums
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// 32 floats times `scale`, rounded to nearest-even, into 32 int8 in order;
// *sum gets the sum of the 32 integers.
inline void round_store_32(const float* x, __m256 scale, int8_t* dst, int* sum) {
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 24), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (sum) *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    // The packs work per 128-bit lane; the permute puts the 4-value groups back in order.
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

inline float abs_max_32(const float* x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    for (int j = 8; j < 32; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
    return hmax(m);
}

void quantize_q8_32(const float* x, int64_t n, uint8_t* row) {
    const int64_t nb = n / 32;
    auto* qs = reinterpret_cast<int8_t*>(row);
    auto* d = reinterpret_cast<float*>(row + n);
    for (int64_t b = 0; b < nb; ++b) {
        const float amax = abs_max_32(x + 32 * b);
        const float db = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        round_store_32(x + 32 * b, _mm256_set1_ps(id), qs + 32 * b, &sum);
        d[b] = _cvtsh_ss(_cvtss_sh(db, _MM_FROUND_TO_NEAREST_INT));
        d[nb + b] = _cvtsh_ss(_cvtss_sh(db * float(sum), _MM_FROUND_TO_NEAREST_INT));
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
        int j_max = 0;  // bounded: a NaN amax matches nothing
        while (j_max < 255 && std::fabs(xb[j_max]) != amax) ++j_max;
        const float iscale = -127.f / xb[j_max];
        const __m256 scale = _mm256_set1_ps(iscale);
        for (int j = 0; j < 256; j += 32) round_store_32(xb + j, scale, q + j, nullptr);
        for (int j = 0; j < 16; ++j) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * j));
            const __m128i s16 = _mm_maddubs_epi16(_mm_set1_epi8(1), v);
            __m128i s32 = _mm_madd_epi16(s16, _mm_set1_epi16(1));
            s32 = _mm_add_epi32(s32, _mm_shuffle_epi32(s32, 0x4E));
            s32 = _mm_add_epi32(s32, _mm_shuffle_epi32(s32, 0xB1));
            bsums[16 * b + j] = int16_t(_mm_cvtsi128_si32(s32));
        }
        d[b] = 1 / iscale;
    }
}

// ---- legacy blocks: 32 values, one scale (Q4_1/Q5_1 also a min) -------------

inline __m256i nibbles_32(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
}

// 0xFF in byte j where bit j of the little-endian 32-bit qh is set.
inline __m256i bits_to_bytes(const uint8_t* qh) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(int(h)),
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// For each type: the 32 quants in element order as unsigned bytes u, with
// w = d * (u - kOffset) (+ m for the types with a min). Then
//   (u - kOffset) . x = u . x - kOffset * sum(x),
// and the block sum of the activations comes with the row (q8_act.h), so the
// inner loop is one unsigned x signed byte dot. Q8_0 (kOffset 128) needs u up to
// 255, past what maddubs' int16 pair sums hold: without VNNI it keeps signed
// quants and the sign trick, |w| . (x * sign(w)).
template <class Block> struct Legacy;
template <> struct Legacy<kiln::block_q4_0> {
    static constexpr int kOffset = 8;
    static constexpr bool kMin = false, kSignTrick = false;
    static __m256i quants(const kiln::block_q4_0& b) { return nibbles_32(b.qs); }
    static float min(const kiln::block_q4_0&) { return 0.0f; }
};
template <> struct Legacy<kiln::block_q4_1> {
    static constexpr int kOffset = 0;
    static constexpr bool kMin = true, kSignTrick = false;
    static __m256i quants(const kiln::block_q4_1& b) { return nibbles_32(b.qs); }
    static float min(const kiln::block_q4_1& b) { return _cvtsh_ss(b.m); }
};
template <> struct Legacy<kiln::block_q5_0> {
    static constexpr int kOffset = 16;
    static constexpr bool kMin = false, kSignTrick = false;
    static __m256i quants(const kiln::block_q5_0& b) {
        return _mm256_or_si256(nibbles_32(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
    }
    static float min(const kiln::block_q5_0&) { return 0.0f; }
};
template <> struct Legacy<kiln::block_q5_1> {
    static constexpr int kOffset = 0;
    static constexpr bool kMin = true, kSignTrick = false;
    static __m256i quants(const kiln::block_q5_1& b) {
        return _mm256_or_si256(nibbles_32(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
    }
    static float min(const kiln::block_q5_1& b) { return _cvtsh_ss(b.m); }
};
template <> struct Legacy<kiln::block_q8_0> {
    static constexpr int kOffset = 128;
    static constexpr bool kMin = false, kSignTrick = !kVnni;
    // With VNNI: q + 128 as an unsigned byte (the xor flips the sign bit).
    static __m256i quants(const kiln::block_q8_0& b) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
        return kSignTrick ? q : _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));
    }
    static float min(const kiln::block_q8_0&) { return 0.0f; }
};

// With AVX-512: two blocks per 512-bit vector, halving the instructions per
// weight; lanes 0-7 hold block b, lanes 8-15 block b + 1, and the block scales
// and offsets are spread the same way. Leaves an odd last block to the caller
// and folds its accumulators into acc. Returns the blocks done.
template <class Block, int RM, int RN>
int64_t legacy_pairs_512(const Block* const* rows, const Q8RowView* x, int64_t nb, __m256 (*acc)[RN], float (*mins)[RN]) {
    using L = Legacy<Block>;
    __m512 acc2[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) acc2[r][t] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m512i wq[RM];
        __m512 dw[RM];
        for (int r = 0; r < RM; ++r) {
            wq[r] = _mm512_inserti64x4(_mm512_castsi256_si512(L::quants(rows[r][b])), L::quants(rows[r][b + 1]), 1);
            dw[r] = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(rows[r][b].d)), _mm256_set1_ps(_cvtsh_ss(rows[r][b + 1].d)), 1);
        }
        for (int t = 0; t < RN; ++t) {
            const __m512i xv = _mm512_loadu_si512(x[t].qs + 32 * b);
            const __m512 dx = _mm512_insertf32x8(_mm512_set1_ps(x[t].d[b]), _mm256_set1_ps(x[t].d[b + 1]), 1);
            const __m512i offset = _mm512_inserti64x4(_mm512_set1_epi32(-(L::kOffset / 8) * x[t].sum[b]),
                                                      _mm256_set1_epi32(-(L::kOffset / 8) * x[t].sum[b + 1]), 1);
            for (int r = 0; r < RM; ++r) {
                const __m512i p = _mm512_dpbusd_epi32(offset, wq[r], xv);
                acc2[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dx), acc2[r][t]);
                if constexpr (L::kMin)
                    mins[r][t] += L::min(rows[r][b]) * x[t].s[b] + L::min(rows[r][b + 1]) * x[t].s[b + 1];
            }
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t)
            acc[r][t] = _mm256_add_ps(acc[r][t], _mm256_add_ps(_mm512_castps512_ps256(acc2[r][t]),
                                                               _mm512_extractf32x8_ps(acc2[r][t], 1)));
    return b;
}

// One token: prefetch the same block of the rows kPrefetchTiles tiles on (rows
// are contiguous, so that is where this thread reads next): several KiB ahead,
// which 4-row tiles of short rows need to keep memory busy (prefetching 32 blocks
// along the same row left a 7B Q4_0 decode at 8 GB/s per core on an EPYC).
constexpr int kPrefetchTiles = 1;

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
    __m256 acc[RM][RN];
    float mins[RM][RN] = {};
    for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
    int64_t b = 0;
    // Not for one token: there the pair assembly costs what the wider vectors save (measured).
    if constexpr (kAvx512 && RN > 1) b = legacy_pairs_512<Block, RM, RN>(rows, x, nb, acc, mins);
    for (; b < nb; ++b) {
        __m256i wq[RM];
        float dw[RM];
        for (int r = 0; r < RM; ++r) {
            // One token reads each weight once, from L3 or memory: fetch ahead of
            // the hardware prefetcher, which ramps up too slowly for short rows.
            if constexpr (RN == 1) _mm_prefetch(reinterpret_cast<const char*>(rows[r] + b) + kPrefetchTiles * RM * w_stride, _MM_HINT_T0);
            wq[r] = L::quants(rows[r][b]);
            dw[r] = _cvtsh_ss(rows[r][b].d);
        }
        for (int t = 0; t < RN; ++t) {
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].qs + 32 * b));
            const __m256 dx = _mm256_broadcast_ss(x[t].d + b);
            // Spread over the 8 lanes, which the final horizontal sum adds back up.
            const __m256i offset = _mm256_set1_epi32(-(L::kOffset / 8) * x[t].sum[b]);
            for (int r = 0; r < RM; ++r) {
                __m256i p;
                if constexpr (L::kSignTrick)
                    p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wq[r], wq[r]), _mm256_sign_epi8(xv, wq[r])),
                                          _mm256_set1_epi16(1));
                else if constexpr (kVnni)
                    p = dpbusd(offset, wq[r], xv);
                else
                    p = _mm256_add_epi32(offset, _mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], xv), _mm256_set1_epi16(1)));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(_mm256_set1_ps(dw[r]), dx), acc[r][t]);
                if constexpr (L::kMin) mins[r][t] += L::min(rows[r][b]) * x[t].s[b];
            }
        }
    }
    for (int t = 0; t < RN; ++t) {
        if constexpr (RM % 4 == 0) {
            for (int r = 0; r < RM; r += 4) {
                __m128 v = hsum_4(acc[r][t], acc[r + 1][t], acc[r + 2][t], acc[r + 3][t]);
                if constexpr (L::kMin) v = _mm_add_ps(v, _mm_setr_ps(mins[r][t], mins[r + 1][t], mins[r + 2][t], mins[r + 3][t]));
                _mm_storeu_ps(y + t * ldy + r, v);
            }
        } else {
            for (int r = 0; r < RM; ++r) y[t * ldy + r] = hsum_f32(acc[r][t]) + mins[r][t];
        }
    }
}

// ---- K-quants: 256 values as 8 chunks of 32 unsigned bytes (kquant_scales.h) --

struct KUnpacked {
    __m256i u[8];
};

// 64 bytes of 2-bit quants (Q2_K, Q3_K): value e of each 128 in byte e % 32 of
// its 32-byte half, at bits 2 * ((e % 128) / 32).
inline void two_bit_chunks(const uint8_t* qs, KUnpacked& k) {
    const __m256i three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
        k.u[4 * h + 0] = _mm256_and_si256(q, three);
        k.u[4 * h + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 2), three);
        k.u[4 * h + 2] = _mm256_and_si256(_mm256_srli_epi16(q, 4), three);
        k.u[4 * h + 3] = _mm256_and_si256(_mm256_srli_epi16(q, 6), three);
    }
}

inline void kunpack_simd(const kiln::block_q2_K& b, KUnpacked& k) { two_bit_chunks(b.qs, k); }

inline void kunpack_simd(const kiln::block_q3_K& b, KUnpacked& k) {
    two_bit_chunks(b.qs, k);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
    const __m256i one = _mm256_set1_epi8(1);
    for (int c = 0; c < 8; ++c) {
        const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(hm, c), one);
        k.u[c] = _mm256_or_si256(k.u[c], _mm256_slli_epi16(bit, 2));
    }
}

inline void kunpack_simd(const kiln::block_q4_K& b, KUnpacked& k) {
    const __m256i lo = _mm256_set1_epi8(0x0F);
    for (int g = 0; g < 4; ++g) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * g));
        k.u[2 * g] = _mm256_and_si256(q, lo);
        k.u[2 * g + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo);
    }
}

inline void kunpack_simd(const kiln::block_q5_K& b, KUnpacked& k) {
    const __m256i lo = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    for (int g = 0; g < 4; ++g) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * g));
        const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), one);
        const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g + 1), one);
        k.u[2 * g] = _mm256_or_si256(_mm256_and_si256(q, lo), _mm256_slli_epi16(h0, 4));
        k.u[2 * g + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), lo), _mm256_slli_epi16(h1, 4));
    }
}

inline void kunpack_simd(const kiln::block_q6_K& b, KUnpacked& k) {
    const __m256i lo = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
        const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
        const __m256i low[4] = {_mm256_and_si256(ql0, lo), _mm256_and_si256(ql1, lo),
                                _mm256_and_si256(_mm256_srli_epi16(ql0, 4), lo), _mm256_and_si256(_mm256_srli_epi16(ql1, 4), lo)};
        for (int c = 0; c < 4; ++c) {
            const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), three);
            k.u[4 * h + c] = _mm256_or_si256(low[c], _mm256_slli_epi16(high, 4));
        }
    }
}

// Per-block factors of kquant_scales.h in vector form: s and m of the 16
// sub-blocks as int16, and the float d and c.
struct KScalesV {
    __m256i s, m;
    float d, c;
};

inline __m256i load_i8x16_as_i16(const void* p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128(static_cast<const __m128i*>(p))); }

inline void kscales_simd(const kiln::block_q2_K& b, KScalesV& k) {
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i lo = _mm_set1_epi8(0x0F);
    k.s = _mm256_cvtepu8_epi16(_mm_and_si128(sc, lo));
    k.m = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), lo));
    k.d = _cvtsh_ss(b.d);
    k.c = _cvtsh_ss(b.dmin);
}

inline void kscales_simd(const kiln::block_q3_K& b, KScalesV& k) {
    KScales ks;
    kscales(b, ks);
    k.s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ks.s));
    k.m = _mm256_slli_epi16(k.s, 2);
    k.d = k.c = _cvtsh_ss(b.d);
}

// The 12 bytes of 6-bit scales and mins of Q4_K/Q5_K (get_scale_min_k4) as
// 32-bit words: sub-blocks 0-3 keep their low 6 bits in bytes 0-3 (scales) and
// 4-7 (mins); 4-7 take a nibble from bytes 8-11 and their top 2 bits from the
// top of bytes 0-3 (scales) and 4-7 (mins).
template <class Block>
inline void kscales_k4_simd(const Block& b, KScalesV& k) {
    uint32_t w[3];
    std::memcpy(w, b.scales, 12);
    const uint32_t low6 = 0x3F3F3F3F, nib = 0x0F0F0F0F, top2 = 0x03030303;
    const uint32_t sc[2] = {w[0] & low6, (w[2] & nib) | (((w[0] >> 6) & top2) << 4)};
    const uint32_t mn[2] = {w[1] & low6, ((w[2] >> 4) & nib) | (((w[1] >> 6) & top2) << 4)};
    // 8 values, each for two 16-value sub-blocks.
    const __m128i s8 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc)));
    const __m128i m8 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
    k.s = _mm256_set_m128i(_mm_unpackhi_epi16(s8, s8), _mm_unpacklo_epi16(s8, s8));
    k.m = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
    k.d = _cvtsh_ss(b.d);
    k.c = _cvtsh_ss(b.dmin);
}
inline void kscales_simd(const kiln::block_q4_K& b, KScalesV& k) { kscales_k4_simd(b, k); }
inline void kscales_simd(const kiln::block_q5_K& b, KScalesV& k) { kscales_k4_simd(b, k); }

inline void kscales_simd(const kiln::block_q6_K& b, KScalesV& k) {
    k.s = load_i8x16_as_i16(b.scales);
    k.m = _mm256_slli_epi16(k.s, 5);
    k.d = k.c = _cvtsh_ss(b.d);
}

// Chunk c (values 32c..32c+31) pairs with sub-blocks 2c and 2c+1: maddubs leaves
// the first 16 values' pair sums in the low 128-bit lane, so the scale vector
// holds s[2c] in its low lane and s[2c + 1] in its high lane.
inline void chunk_scales(__m256i s, __m256i* sc) {
    const __m256i lo = _mm256_permute2x128_si256(s, s, 0x00), hi = _mm256_permute2x128_si256(s, s, 0x11);
    for (int c = 0; c < 4; ++c) {
        // Bytes of int16 #2c in the low lane and of #2c+1 in the high lane, repeated.
        const char a0 = char(4 * c), a1 = char(4 * c + 1), b0 = char(4 * c + 2), b1 = char(4 * c + 3);
        const __m256i pick = _mm256_setr_epi8(a0, a1, a0, a1, a0, a1, a0, a1, a0, a1, a0, a1, a0, a1, a0, a1,
                                              b0, b1, b0, b1, b0, b1, b0, b1, b0, b1, b0, b1, b0, b1, b0, b1);
        sc[c] = _mm256_shuffle_epi8(lo, pick);
        sc[c + 4] = _mm256_shuffle_epi8(hi, pick);
    }
}

constexpr int kPrefetchSuperBlocks = 8;

// RN tokens against one K-quant row, unpacking each super-block once.
template <class Block, int RN>
void k_row(const uint8_t* w, const uint8_t* xq, size_t x_stride, int64_t n_in, float* y, int64_t ldy) {
    const auto* blocks = reinterpret_cast<const Block*>(w);
    const int64_t nb = n_in / 256;
    Q8RowView x[RN];
    for (int t = 0; t < RN; ++t) x[t] = q8_row_view(ActQuant::Q8_K, xq + size_t(t) * x_stride, n_in);
    __m256 acc[RN];
    for (int t = 0; t < RN; ++t) acc[t] = _mm256_setzero_ps();
    KUnpacked k;
    KScalesV ks;
    for (int64_t b = 0; b < nb; ++b) {
        if constexpr (RN == 1)  // as in legacy_tile: about a kilobyte ahead of the loads
            for (size_t off = 0; off < sizeof(Block); off += 64)
                _mm_prefetch(reinterpret_cast<const char*>(blocks + b + kPrefetchSuperBlocks) + off, _MM_HINT_T0);
        kunpack_simd(blocks[b], k);
        kscales_simd(blocks[b], ks);
        __m256i sc[8];
        chunk_scales(ks.s, sc);
        const __m256i mins = ks.m;
        for (int t = 0; t < RN; ++t) {
            const int8_t* q = x[t].qs + 256 * b;
            __m256i isum = _mm256_setzero_si256();
            for (int c = 0; c < 8; ++c) {
                const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * c));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(k.u[c], xv), sc[c]));
            }
            const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].bsums + 16 * b));
            const __m256i msum = _mm256_madd_epi16(mins, bs);
            const float dx = x[t].d[b];
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(ks.d * dx), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(ks.c * dx), acc[t]);
        }
    }
    for (int t = 0; t < RN; ++t) y[t * ldy] = hsum_f32(acc[t]);
}

// ---- Q4_0 repacked in groups of 16 rows (q4_0_x16.h) ---------------------------
//
// Each int32 lane is one row: a chunk lane's 4 bytes are 4 consecutive quants of
// its row, so one u8 x s8 dot against the activation's matching 4 bytes
// broadcast to every lane adds them into that row's lane. A block is 8 such steps
// (4 chunks x low/high nibbles) and its 16 scales are one vector: no horizontal
// sums, no per-row scale broadcasts, and one sequential stream of weights.
// AVX2 runs the two 8-row halves of each chunk one after the other.

// Tokens per tile: AVX-512 keeps the block's 8 weight vectors and 2 x 8 sums in
// its 32 registers; AVX2 has half the registers and twice the vectors per block.
constexpr int kX16RN = kAvx512 ? 8 : 4;
// Decode reads each weight once, in one stream per thread: prefetch 4 KiB ahead
// (7B Q4_0, one thread, alternating runs: none 3.51/3.57 t/s, 2 KiB 3.78/3.67,
// 4 KiB 3.89/3.82/3.92/3.84, 8 KiB 4.02/3.87; at two threads 4 and 8 KiB tie).
constexpr int kX16PrefetchBytes = 4096;

// The block kX16PrefetchBytes on in the quant stream (4 lines) and its scales.
inline void x16_prefetch(const uint8_t* q, const uint8_t* scales) {
    if constexpr (kX16PrefetchBytes > 0) {
        for (int l = 0; l < 256; l += 64) _mm_prefetch(reinterpret_cast<const char*>(q) + kX16PrefetchBytes + l, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(scales) + kX16PrefetchBytes / 8, _MM_HINT_T0);
    }
}

// Token t's activation block b, as q8_act.h lays a Q8_0 row out: quants at
// row + 32 * b, scale and quant sum at fixed offsets past the quants. One pointer
// stepping by the row stride reaches every token (no per-token pointers to hold).
struct X16Act {
    const uint8_t* row;  // token 0
    size_t stride;       // bytes between tokens
    size_t d_off, sum_off;
    const int32_t* q(int64_t b, const uint8_t* r) const { return reinterpret_cast<const int32_t*>(r + 32 * b); }
    float d(int64_t b, const uint8_t* r) const { return reinterpret_cast<const float*>(r + d_off)[b]; }
    int32_t sum(int64_t b, const uint8_t* r) const { return reinterpret_cast<const int32_t*>(r + sum_off)[b]; }
};

// acc[t] += block b of one 8-row half of the group (q, scales already offset to it) x token t.
template <int RN>
inline void q4_0_x16_block_256(const uint8_t* q, const uint8_t* scales, int64_t b, const X16Act& x, __m256* acc) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
    __m256i s[RN];
    const uint8_t* r = x.row;
#pragma GCC unroll 16
    for (int t = 0; t < RN; ++t, r += x.stride) s[t] = kVnni ? _mm256_set1_epi32(-8 * x.sum(b, r)) : _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * k));
        const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        r = x.row;
    #pragma GCC unroll 16
    for (int t = 0; t < RN; ++t, r += x.stride) {
            const int32_t* xb = x.q(b, r);
            const __m256i xl = _mm256_set1_epi32(xb[k]), xh = _mm256_set1_epi32(xb[4 + k]);
            if constexpr (kVnni) {
                s[t] = dpbusd(dpbusd(s[t], lo, xl), hi, xh);
            } else {
                // int16 pair sums: 16 products of at most 15 * 127 per lane stay below 2^15.
                s[t] = _mm256_add_epi16(s[t], _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh)));
            }
        }
    }
    r = x.row;
#pragma GCC unroll 16
    for (int t = 0; t < RN; ++t, r += x.stride) {
        __m256i p = s[t];
        if constexpr (!kVnni)
            p = _mm256_add_epi32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)), _mm256_set1_epi32(-8 * x.sum(b, r)));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, _mm256_set1_ps(x.d(b, r))), acc[t]);
    }
}

// One group (n_rows <= 16 of its rows are stored) x RN tokens.
template <int RN>
void q4_0_x16_tile(const uint8_t* group, int64_t n_rows, const uint8_t* xq, size_t x_stride, int64_t n_in, float* y,
                   int64_t ldy) {
    const int64_t nb = n_in / 32;
    const uint8_t* scales = group + size_t(nb) * 256;
    const X16Act x{xq, x_stride, size_t(n_in), size_t(n_in) + 8 * size_t(nb)};
    if constexpr (kAvx512) {
        __m512 acc[RN];
        for (int t = 0; t < RN; ++t) acc[t] = _mm512_setzero_ps();
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        // The block loop stays in this function and the token loop is unrolled:
        // only then does GCC keep acc in registers.
#pragma GCC unroll 1
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* q = group + 256 * b;
            if constexpr (RN == 1) x16_prefetch(q, scales + 32 * b);
            __m512i w[8];
            for (int k = 0; k < 4; ++k) {
                const __m512i v = _mm512_loadu_si512(q + 64 * k);
                w[k] = _mm512_and_si512(v, m4);
                w[4 + k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
            // Token-inner order: consecutive dot products are independent, so the
            // 8-deep chain of each token's sum never stalls the pipeline.
            __m512i sum[RN];
            const uint8_t* r = x.row;
#pragma GCC unroll 16
            for (int t = 0; t < RN; ++t, r += x.stride)
                sum[t] = _mm512_set1_epi32(-8 * x.sum(b, r));  // (u - 8) . x = u . x - 8 * sum(x)
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) {
                r = x.row;
#pragma GCC unroll 16
                for (int t = 0; t < RN; ++t, r += x.stride)
                    sum[t] = _mm512_dpbusd_epi32(sum[t], w[j], _mm512_set1_epi32(x.q(b, r)[j]));
            }
            r = x.row;
#pragma GCC unroll 16
            for (int t = 0; t < RN; ++t, r += x.stride)
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), _mm512_mul_ps(dw, _mm512_set1_ps(x.d(b, r))), acc[t]);
        }
        const __mmask16 keep = __mmask16((1u << n_rows) - 1);
        for (int t = 0; t < RN; ++t) _mm512_mask_storeu_ps(y + t * ldy, keep, acc[t]);
    } else {
        for (int h = 0; h < 2; ++h) {
            __m256 acc[RN];
            for (int t = 0; t < RN; ++t) acc[t] = _mm256_setzero_ps();
            for (int64_t b = 0; b < nb; ++b) {
                if constexpr (RN == 1) x16_prefetch(group + 256 * b + 32 * h, scales + 32 * b);
                q4_0_x16_block_256<RN>(group + 256 * b + 32 * h, scales + 32 * b + 16 * h, b, x, acc);
            }
            const int64_t n = std::min<int64_t>(8, n_rows - 8 * h);
            for (int t = 0; t < RN && n > 0; ++t) {
                if (n == 8) {
                    _mm256_storeu_ps(y + t * ldy + 8 * h, acc[t]);
                } else {
                    alignas(32) float tmp[8];
                    _mm256_store_ps(tmp, acc[t]);
                    std::memcpy(y + t * ldy + 8 * h, tmp, size_t(n) * sizeof(float));
                }
            }
        }
    }
}

// w: the repacked tensor from row 0 of this call (a multiple of 16 rows into
// the tensor), group_stride bytes per group of 16 rows.
void q4_0_x16_gemm(const uint8_t* w, size_t group_stride, int64_t n_rows, const uint8_t* xq, size_t x_stride,
                   int64_t n_tok, int64_t n_in, float* y, int64_t ldy) {
    for (int64_t r = 0; r < n_rows; r += 16) {
        const uint8_t* group = w + size_t(r / 16) * group_stride;
        const int64_t rows = std::min<int64_t>(16, n_rows - r);
        int64_t t = 0;
        for (; t + kX16RN <= n_tok; t += kX16RN)
            q4_0_x16_tile<kX16RN>(group, rows, xq + size_t(t) * x_stride, x_stride, n_in, y + t * ldy + r, ldy);
        const uint8_t* xt = xq + size_t(t) * x_stride;
        float* yt = y + t * ldy + r;
        switch (n_tok - t) {
            case 7: if constexpr (kX16RN > 7) q4_0_x16_tile<7>(group, rows, xt, x_stride, n_in, yt, ldy); break;
            case 6: if constexpr (kX16RN > 6) q4_0_x16_tile<6>(group, rows, xt, x_stride, n_in, yt, ldy); break;
            case 5: if constexpr (kX16RN > 5) q4_0_x16_tile<5>(group, rows, xt, x_stride, n_in, yt, ldy); break;
            case 4: if constexpr (kX16RN > 4) q4_0_x16_tile<4>(group, rows, xt, x_stride, n_in, yt, ldy); break;
            case 3: q4_0_x16_tile<3>(group, rows, xt, x_stride, n_in, yt, ldy); break;
            case 2: q4_0_x16_tile<2>(group, rows, xt, x_stride, n_in, yt, ldy); break;
            case 1: q4_0_x16_tile<1>(group, rows, xt, x_stride, n_in, yt, ldy); break;
            default: break;
        }
    }
}

// ---- tiling ------------------------------------------------------------------

// Row and token blocking of the legacy micro-kernel: AVX2 has 16 vector
// registers (2 x 4 accumulators, 2 weights, temporaries), AVX-512 has 32.
constexpr int kLegacyRM = kAvx512 ? 4 : 2;
constexpr int kLegacyRN = 4;
constexpr int kKRN = 4;

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

// ---- batches on AVX-512: weights unpacked once per call ------------------------
//
// A batch tile reuses each weight block for RN tokens, but the tile loop over
// all tokens would unpack it again for every RN of them. For batches the
// AVX-512 kernels first unpack kPackRows rows into a pack, per pair of blocks
// 128 bytes: the 64 unsigned quants, then the two scales spread over 16 floats
// (lanes 0-7 block b, 8-15 block b + 1; a missing last block of an odd count
// is zeros). Types with a min (Q4_1, Q5_1) keep the direct tiles.
constexpr int kPackRows = 4;
constexpr int kPackRN = 4;

template <class Block>
void pack_rows(const Block* const* rows, int n_rows, int64_t nb, uint8_t* pack, size_t row_pack_bytes) {
    using L = Legacy<Block>;
    for (int r = 0; r < n_rows; ++r) {
        uint8_t* dst = pack + size_t(r) * row_pack_bytes;
        for (int64_t b = 0; b < nb; b += 2, dst += 128) {
            const bool two = b + 1 < nb;
            const __m256i q1 = two ? L::quants(rows[r][b + 1]) : _mm256_setzero_si256();
            _mm512_storeu_si512(dst, _mm512_inserti64x4(_mm512_castsi256_si512(L::quants(rows[r][b])), q1, 1));
            const __m256 d1 = _mm256_set1_ps(two ? _cvtsh_ss(rows[r][b + 1].d) : 0.0f);
            _mm512_storeu_ps(dst + 64, _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(rows[r][b].d)), d1, 1));
        }
    }
}

template <int kOffset, int RN>
void packed_tile(const uint8_t* pack, size_t row_pack_bytes, const uint8_t* xq, size_t x_stride, int64_t n_in,
                 float* y, int64_t ldy) {
    constexpr int RM = kPackRows;
    const int64_t nb = n_in / 32;
    Q8RowView x[RN];
    for (int t = 0; t < RN; ++t) x[t] = q8_row_view(ActQuant::Q8_0, xq + size_t(t) * x_stride, n_in);
    __m512 acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const uint8_t* pb = pack + size_t(b) * 64;  // 128 bytes per pair
        const bool two = b + 1 < nb;
        __m512i wq[RM];
        for (int r = 0; r < RM; ++r) wq[r] = _mm512_loadu_si512(pb + size_t(r) * row_pack_bytes);
        for (int t = 0; t < RN; ++t) {
            const int8_t* xb = x[t].qs + 32 * b;
            // The second half of a lone last block stays inside the row (its scales
            // follow the quants) and meets zero weights, zero scales and zero offset.
            const __m512i xv = two ? _mm512_loadu_si512(xb) : _mm512_maskz_loadu_epi8(0xFFFFFFFFull, xb);
            const __m512 dx = _mm512_insertf32x8(_mm512_set1_ps(x[t].d[b]), _mm256_set1_ps(two ? x[t].d[b + 1] : 0.0f), 1);
            const __m512i offset = _mm512_inserti64x4(_mm512_set1_epi32(-(kOffset / 8) * x[t].sum[b]),
                                                      _mm256_set1_epi32(two ? -(kOffset / 8) * x[t].sum[b + 1] : 0), 1);
            for (int r = 0; r < RM; ++r) {
                const __m512 dw = _mm512_loadu_ps(pb + size_t(r) * row_pack_bytes + 64);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(offset, wq[r], xv)), _mm512_mul_ps(dw, dx),
                                            acc[r][t]);
            }
        }
    }
    for (int t = 0; t < RN; ++t) {
        __m256 h[RM];
        for (int r = 0; r < RM; ++r)
            h[r] = _mm256_add_ps(_mm512_castps512_ps256(acc[r][t]), _mm512_extractf32x8_ps(acc[r][t], 1));
        _mm_storeu_ps(y + t * ldy, hsum_4(h[0], h[1], h[2], h[3]));
    }
}

template <class Block>
void legacy_gemm_packed(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* xq, size_t x_stride,
                        int64_t n_tok, int64_t n_in, float* y, int64_t ldy) {
    constexpr int kOffset = Legacy<Block>::kOffset;
    const int64_t nb = n_in / 32;
    const size_t row_pack_bytes = size_t((nb + 1) / 2) * 128;
    // Grows to the widest row seen, once per thread; kernels otherwise never allocate.
    thread_local std::vector<uint8_t> pack;
    if (pack.size() < kPackRows * row_pack_bytes) pack.resize(kPackRows * row_pack_bytes);
    int64_t r = 0;
    for (; r + kPackRows <= n_rows; r += kPackRows) {
        const Block* rows[kPackRows];
        for (int i = 0; i < kPackRows; ++i) rows[i] = reinterpret_cast<const Block*>(w + size_t(r + i) * w_stride);
        pack_rows(rows, kPackRows, nb, pack.data(), row_pack_bytes);
        int64_t t = 0;
        for (; t + kPackRN <= n_tok; t += kPackRN)
            packed_tile<kOffset, kPackRN>(pack.data(), row_pack_bytes, xq + size_t(t) * x_stride, x_stride, n_in,
                                          y + t * ldy + r, ldy);
        for (; t < n_tok; ++t)
            packed_tile<kOffset, 1>(pack.data(), row_pack_bytes, xq + size_t(t) * x_stride, x_stride, n_in, y + t * ldy + r, ldy);
    }
    for (; r < n_rows; ++r) legacy_rows<Block, 1>(w + size_t(r) * w_stride, w_stride, xq, x_stride, n_tok, n_in, y + r, ldy);
}

template <class Block>
void legacy_gemm(const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* xq, size_t x_stride, int64_t n_tok,
                 int64_t n_in, float* y, int64_t ldy) {
    if constexpr (kAvx512 && !Legacy<Block>::kMin) {
        if (n_tok >= 2 * kPackRN) {
            legacy_gemm_packed<Block>(w, w_stride, n_rows, xq, x_stride, n_tok, n_in, y, ldy);
            return;
        }
    }
    int64_t r = 0;
    for (; r + kLegacyRM <= n_rows; r += kLegacyRM)
        legacy_rows<Block, kLegacyRM>(w + size_t(r) * w_stride, w_stride, xq, x_stride, n_tok, n_in, y + r, ldy);
    for (; r < n_rows; ++r) legacy_rows<Block, 1>(w + size_t(r) * w_stride, w_stride, xq, x_stride, n_tok, n_in, y + r, ldy);
}

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

const kiln::cpu::QuantKernels kX86QuantKernels{
    {quantize_q8_32, quantize_q8_32, quantize_q8_K},
    {
        legacy_gemm<kiln::block_q4_0>,
        legacy_gemm<kiln::block_q4_1>,
        legacy_gemm<kiln::block_q5_0>,
        legacy_gemm<kiln::block_q5_1>,
        legacy_gemm<kiln::block_q8_0>,
        k_gemm<kiln::block_q2_K>,
        k_gemm<kiln::block_q3_K>,
        k_gemm<kiln::block_q4_K>,
        k_gemm<kiln::block_q5_K>,
        k_gemm<kiln::block_q6_K>,
    },
    q4_0_x16_gemm};
