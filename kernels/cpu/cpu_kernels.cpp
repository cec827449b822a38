#include "kernels/cpu/cpu_kernels.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace kiln::cpu {
namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

const CpuKernels& pick() {
    const char* want = std::getenv("KILN_CPU_ISA");
    if (want && *want) {
        if (std::strcmp(want, "generic") == 0) return generic_kernels();
        if (std::strcmp(want, "avx2") == 0) {
            if (avx2_kernels() && cpu_has_avx2()) return *avx2_kernels();
            throw std::runtime_error("KILN_CPU_ISA=avx2 but this CPU (or build) has no AVX2+FMA+F16C; "
                                     "unset KILN_CPU_ISA or use KILN_CPU_ISA=generic");
        }
        throw std::runtime_error(std::string("KILN_CPU_ISA=") + want + " is not a known kernel set; use generic or avx2");
    }
    if (avx2_kernels() && cpu_has_avx2()) return *avx2_kernels();
    return generic_kernels();
}

}  // namespace

const CpuKernels& cpu_kernels() {
    static const CpuKernels& k = pick();
    return k;
}

}  // namespace kiln::cpu
