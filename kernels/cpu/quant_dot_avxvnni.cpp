// Integer dot kernels for AVX2 + AVX-VNNI (the VEX vpdpbusd of CPUs without AVX-512): quant_dot_x86.h compiled with this
// file's flags (cmake/cpu_isa.cmake); only called after CPUID says the CPU has them.
#include "kernels/cpu/cpu_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "formats/fp16.h"
#include "formats/quant_blocks.h"
#include "kernels/cpu/q8_act.h"

namespace kiln::cpu {
namespace {
#include "kernels/cpu/kquant_scales.h"
#include "kernels/cpu/quant_dot_x86.h"
}  // namespace

const QuantKernels* avxvnni_quant_kernels() { return &kX86QuantKernels; }

}  // namespace kiln::cpu

#else
namespace kiln::cpu {
const QuantKernels* avxvnni_quant_kernels() { return nullptr; }
}  // namespace kiln::cpu
#endif
