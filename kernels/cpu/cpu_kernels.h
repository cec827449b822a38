#pragma once
// The inner loops of the CPU backend, as one function table chosen once at
// start-up from CPUID (never a branch per call). Each ISA's kernels live in
// their own translation units compiled with that ISA's flags (cmake/cpu_isa.cmake):
//   scalar: float_kernels_generic.cpp, quant_dot_scalar.cpp (any CPU; the oracle)
//   avx2:   float_kernels_avx2.cpp, quant_dot_avx2.cpp (AVX2 + FMA + F16C)
//   avxvnni: the avx2 float kernels, quant_dot_avxvnni.cpp (AVX2 + AVX-VNNI, no AVX-512)
//   avx512: float_kernels_avx512.cpp (its float gemm; the rest from avx2),
//           quant_dot_avx512.cpp (AVX-512 F/BW/VL/DQ + VNNI)
//   neon:   float_kernels_neon.cpp, quant_dot_neon.cpp (AArch64 with the dotprod
//           extension, from getauxval(AT_HWCAP); without it, scalar)
// KILN_CPU=scalar|avx2|avxvnni|avx512|neon in the environment forces a table (tests,
// bisecting); a choice this CPU or build cannot run is an error, never a fallback.
#include <cstdint>
#include <vector>

#include "kernels/cpu/q8_act.h"

namespace kiln::cpu {

struct CpuKernels {
    const char* isa;
    // y[t * ldy + r] = dot(x[t * ldx ...], w[r * n_in ...]) for r < n_w <= 16, t < n_tok:
    // a tile of dequantized weight rows against a batch of tokens. `pack` is
    // scratch for 16 * n_in floats (a kernel may re-lay the tile there).
    void (*gemm_f32)(const float* w, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok,
                     int64_t n_in, float* y, int64_t ldy, float* pack);
    // The same product with the tile already packed as (n_in, 16): pack[i * 16 + r] = w[r][i],
    // zero past n_w (attention writes K and V straight into that layout).
    void (*gemm_f32_packed)(const float* pack, int64_t n_w, const float* x, int64_t ldx, int64_t n_tok, int64_t n_in,
                            float* y, int64_t ldy);
    float (*dot_f32)(const float* a, const float* b, int64_t n);
    // dot of an F16 weight row with F32 activations, converting in registers: the
    // decode step's matmul, where a scratch copy of the row would cost as much as the dot.
    float (*dot_f16_f32)(const uint16_t* w, const float* x, int64_t n);
    // y[i] += a * x[i]
    void (*axpy_f32)(float a, const float* x, float* y, int64_t n);
    void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
    // Round to nearest-even, as formats/fp16.h does (the KV cache store).
    void (*f32_to_f16)(const float* src, uint16_t* dst, int64_t n);
    // x[i] = exp(x[i] - max) in place (exp(-inf) = 0); returns the sum: softmax's inner loop.
    float (*exp_sum_f32)(float* x, int64_t n, float max);
    // out[i] = silu(gate[i]) * up[i] (out may alias gate or up).
    void (*swiglu_f32)(const float* gate, const float* up, float* out, int64_t n);
    // Quantized weights x 8-bit activations (q8_act.h).
    QuantKernels quant;
};

const CpuKernels& cpu_kernels();          // the table for this CPU (or KILN_CPU)
const CpuKernels& scalar_kernels();       // always available
const CpuKernels* avx2_kernels();         // nullptr when not compiled in (non-x86)
const CpuKernels* avxvnni_kernels();      // nullptr when not compiled in (non-x86)
const CpuKernels* avx512_kernels();       // nullptr when not compiled in (non-x86)
const CpuKernels* neon_kernels();         // nullptr when not compiled in (non-AArch64)
// Every table this CPU can run, scalar first (tests compare them all).
std::vector<const CpuKernels*> runnable_kernels();

// The per-ISA integer kernels the tables above are assembled from.
const QuantKernels& scalar_quant_kernels();
const QuantKernels* avx2_quant_kernels();
const QuantKernels* avxvnni_quant_kernels();
const QuantKernels* avx512_quant_kernels();
const QuantKernels* neon_quant_kernels();
// AVX-512 float gemm entries (the rest of the avx512 table is avx2's float kernels).
struct GemmF32Kernels {
    decltype(CpuKernels::gemm_f32) gemm_f32;
    decltype(CpuKernels::gemm_f32_packed) gemm_f32_packed;
};
const GemmF32Kernels* avx512_gemm_f32_kernels();

}  // namespace kiln::cpu
