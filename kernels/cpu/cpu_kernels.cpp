#include "kernels/cpu/cpu_kernels.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)  // the Linux AArch64 hwcap bit, for C libraries that do not name it
#endif
#endif

namespace kiln::cpu {
namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

bool cpu_has_avxvnni() {
#if defined(__x86_64__) || defined(__i386__)
    return cpu_has_avx2() && __builtin_cpu_supports("avxvnni");
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}

// NEON itself is part of every AArch64 CPU; the table also needs sdot (ARMv8.2-A dotprod).
bool cpu_has_neon_dotprod() {
#if defined(__aarch64__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return false;
#endif
}

const CpuKernels* runnable(const char* isa) {
    if (std::strcmp(isa, "scalar") == 0) return &scalar_kernels();
    if (std::strcmp(isa, "avx2") == 0) return cpu_has_avx2() ? avx2_kernels() : nullptr;
    if (std::strcmp(isa, "avxvnni") == 0) return cpu_has_avxvnni() ? avxvnni_kernels() : nullptr;
    if (std::strcmp(isa, "avx512") == 0) return cpu_has_avx512() ? avx512_kernels() : nullptr;
    if (std::strcmp(isa, "neon") == 0) return cpu_has_neon_dotprod() ? neon_kernels() : nullptr;
    return nullptr;
}

const CpuKernels& pick() {
    const char* want = std::getenv("KILN_CPU");
    if (want && *want) {
        const bool known = std::strcmp(want, "scalar") == 0 || std::strcmp(want, "avx2") == 0 ||
                           std::strcmp(want, "avxvnni") == 0 || std::strcmp(want, "avx512") == 0 ||
                           std::strcmp(want, "neon") == 0;
        if (!known)
            throw std::runtime_error(std::string("KILN_CPU=") + want +
                                     " is not a kernel set; use scalar, avx2, avxvnni, avx512 or neon (or unset it)");
        if (const CpuKernels* k = runnable(want)) return *k;
        throw std::runtime_error(std::string("KILN_CPU=") + want + ": this CPU or build cannot run those kernels (best here: " +
                                 runnable_kernels().back()->isa + "); unset KILN_CPU or choose another");
    }
    return *runnable_kernels().back();
}

}  // namespace

const CpuKernels* avxvnni_kernels() {
    if (!avx2_kernels() || !avxvnni_quant_kernels()) return nullptr;
    static const CpuKernels k = [] {
        CpuKernels t = *avx2_kernels();
        t.isa = "avxvnni";
        t.quant = *avxvnni_quant_kernels();
        return t;
    }();
    return &k;
}

const CpuKernels* avx512_kernels() {
    if (!avx2_kernels() || !avx512_quant_kernels() || !avx512_gemm_f32_kernels()) return nullptr;
    // The other float kernels are memory-bound: AVX2's serve.
    static const CpuKernels k = [] {
        CpuKernels t = *avx2_kernels();
        t.isa = "avx512";
        t.gemm_f32 = avx512_gemm_f32_kernels()->gemm_f32;
        t.gemm_f32_packed = avx512_gemm_f32_kernels()->gemm_f32_packed;
        t.quant = *avx512_quant_kernels();
        return t;
    }();
    return &k;
}

std::vector<const CpuKernels*> runnable_kernels() {
    std::vector<const CpuKernels*> t{&scalar_kernels()};
    for (const char* isa : {"avx2", "avxvnni", "avx512", "neon"})
        if (const CpuKernels* k = runnable(isa)) t.push_back(k);
    return t;
}

const CpuKernels& cpu_kernels() {
    static const CpuKernels& k = pick();
    return k;
}

}  // namespace kiln::cpu
