// AVX-512 float gemm (compiled with the AVX-512 flags of cmake/cpu_isa.cmake;
// only called after CPUID says the CPU has them): a 16-row tile is one zmm
// column, so T tokens take T accumulators and each weight load serves them all.
#include "kernels/cpu/cpu_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace kiln::cpu {
namespace {

// pack[i * 16 + r] = w[r][i], zero past n_w (the layout gemm_f32_packed takes).
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
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n_in; ++i) {
        const __m512 w = _mm512_loadu_ps(pack + i * 16);
        for (int t = 0; t < T; ++t) acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(x[t * ldx + i]), w, acc[t]);
    }
    const __mmask16 keep = __mmask16((1u << n_w) - 1);
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ldy, keep, acc[t]);
}

void gemm_packed(const float* pack, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in, float* y,
                 int64_t ldy) {
    constexpr int T = 12;  // accumulators; the rest of the 32 registers hold the weights and broadcasts
    int64_t t = 0;
    for (; t + T <= n_tok; t += T) kernel_tx16<T>(pack, x + t * ldx, ldx, n_in, y + t * ldy, ldy, n_w);
    const float* xt = x + t * ldx;
    float* yt = y + t * ldy;
    switch (n_tok - t) {
        case 11: kernel_tx16<11>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 10: kernel_tx16<10>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 9: kernel_tx16<9>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 8: kernel_tx16<8>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 7: kernel_tx16<7>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 6: kernel_tx16<6>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 5: kernel_tx16<5>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 4: kernel_tx16<4>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 3: kernel_tx16<3>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 2: kernel_tx16<2>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        case 1: kernel_tx16<1>(pack, xt, ldx, n_in, yt, ldy, n_w); break;
        default: break;
    }
}

void gemm(const float* w, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in, float* y,
          int64_t ldy, float* pack) {
    if (n_tok < 3) {  // decode-sized: packing would cost as much as the dots
        for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < n_w; ++r) {
                __m512 acc = _mm512_setzero_ps();
                int64_t i = 0;
                for (; i + 16 <= n_in; i += 16)
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + t * ldx + i), _mm512_loadu_ps(w + r * n_in + i), acc);
                const __mmask16 tail = __mmask16((1u << (n_in - i)) - 1);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + t * ldx + i), _mm512_maskz_loadu_ps(tail, w + r * n_in + i), acc);
                y[t * ldy + r] = _mm512_reduce_add_ps(acc);
            }
        return;
    }
    pack16(w, n_w, n_in, pack);
    gemm_packed(pack, n_w, x, ldx, n_tok, n_in, y, ldy);
}

}  // namespace

const GemmF32Kernels* avx512_gemm_f32_kernels() {
    static const GemmF32Kernels k{gemm, gemm_packed};
    return &k;
}

}  // namespace kiln::cpu

#else
namespace kiln::cpu {
const GemmF32Kernels* avx512_gemm_f32_kernels() { return nullptr; }
}  // namespace kiln::cpu
#endif
