#pragma once
// The warp-level tensor-core instructions of sm_80+ as PTX: asynchronous global
// -> shared copies, ldmatrix and the m16n8k16 F16 mma with F32 accumulators.
// wmma hides which thread holds which element; these fix it, so a kernel can
// load fragments straight from padded shared tiles and store its results
// without staging them through shared memory.
//
// m16n8k16, row.col: A is 16 (m) x 16 (k), B is 16 (k) x 8 (n), both read from
// shared rows whose k runs contiguously. Accumulator c[0], c[1] belong to row
// lane / 4, columns 2 * (lane % 4) + 0, 1; c[2], c[3] to row lane / 4 + 8.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda {

__device__ __forceinline__ uint32_t shared_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, not through L1 (the tile is read from shared memory only).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(shared_addr(smem)), "l"(gmem) : "memory");
}
// As cp_async16, but zeros land in shared memory instead where `valid` is false
// (gmem is then not read, yet must be a mapped address).
__device__ __forceinline__ void cp_async16_or_zero(void* smem, const void* gmem, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared_addr(smem)), "l"(gmem),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;" ::: "memory"); }

// Four 8x8 matrices of 16-bit values; lane l gives the address of row l % 8 of
// matrix l / 8 (16 contiguous bytes), and receives in r[i] its two values of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_addr(row))
                 : "memory");
}

// The same, each matrix transposed: lane l gives row l % 8 of matrix l / 8 and
// receives its values of column l / 4 (a B fragment from k-major rows).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_addr(row))
                 : "memory");
}

// Two floats as the half2 word of an A fragment (the first in the low half).
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

// c += A (16x16, a[0..3]) * B (16x8, b0 b1).
__device__ __forceinline__ void mma_f16_m16n8k16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace kiln::cuda
