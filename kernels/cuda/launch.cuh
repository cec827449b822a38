#pragma once
// The one way the CUDA backend launches a kernel: launch_kernel(), with
// programmatic dependent launch (PDL, sm_90+) when pdl_launches() is on.
//
// A decode step is ~290 short kernels; between two of them the GPU idles for
// the launch latency and for the first kernel's tail and the second's ramp-up
// (~2 us each on an H200). With PDL a kernel's blocks are scheduled while the
// previous kernel still runs, and wait in griddepcontrol.wait until it has
// completed and its writes are visible. So every kernel of the backend:
//   - calls let_next_grid_start() at its top: the next kernel's blocks may be
//     scheduled once every block of this grid has started (they only wait);
//   - calls wait_prior_grid() in every thread before it exits, and before it
//     reads anything an earlier kernel wrote or writes anything an earlier
//     kernel reads or writes. Only constant data (weights, uploaded before any
//     step) may be touched first: the matrix-vector kernels prefetch_l2() their
//     first weight bytes there.
// Waiting in every kernel keeps completion transitive along the stream: a
// kernel completes only after its predecessor did, so a wait covers all
// earlier work, not just the previous kernel's. Host copies and memsets between
// kernels are ordinary stream dependencies and need nothing.
// Launched without the attribute (KILN_CUDA_PDL=0, pre-Hopper devices), both
// instructions return at once.
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/cuda/cuda_ops.h"
#ifdef KILN_CUDA_TRACE
#include "kernels/cuda/launch_trace.h"
#endif

namespace kiln::cuda {

#ifdef KILN_CUDA_TRACE
// The trace build (launch_trace.h). Without relocatable device code every .cu
// file has its own copy of this pointer; each file registers its setter at
// start-up, and the backend calls them all before it records any graph.
namespace {
__device__ TraceStamp* g_trace_stamps = nullptr;
void trace_attach_file(TraceStamp* buf) { cudaMemcpyToSymbol(g_trace_stamps, &buf, sizeof buf); }
struct TraceAttachRegistration {
    TraceAttachRegistration() { trace_register_attach(&trace_attach_file); }
};
const TraceAttachRegistration g_trace_attach_registration;
}  // namespace
// After the wait only (one atomic a kernel; block 0's thread 0 alone pays it).
__device__ __forceinline__ void trace_waited() {
    if ((blockIdx.x | blockIdx.y | blockIdx.z | threadIdx.x | threadIdx.y | threadIdx.z) != 0) return;
    TraceStamp* buf = g_trace_stamps;
    if (!buf) return;
    uint64_t ns;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
    const unsigned long long i = atomicAdd(reinterpret_cast<unsigned long long*>(&buf[0].ns), 1ull) + 1;
    if (i < kTraceSlots) buf[i].ns = ns;
}
#else
__device__ __forceinline__ void trace_waited() {}
#endif

// griddepcontrol is PTX for sm_90+; the sm_80/86/89 builds never see PDL
// launches (CudaBackend keeps pdl_launches() off there), so these helpers
// compile to nothing there.
__device__ __forceinline__ void wait_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    trace_waited();
}
__device__ __forceinline__ void let_next_grid_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// A hint to bring the 128-byte line holding p into L2, for constant data (weights)
// a kernel reads early: issued before wait_prior_grid, the line streams in while
// the previous kernel finishes, and it ties up no registers (loads into
// registers there cost the decode kernels 4-8 registers: blocks per SM).
__device__ __forceinline__ void prefetch_l2(const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p) : "memory");  // "memory": stays before the wait
#endif
}

// Lets kKernel take `bytes` of dynamic shared memory (over 48 KB needs an opt-in
// per kernel and device) on the current device, asking the driver once per device;
// false where the device cannot give that much.
template <auto kKernel>
bool allow_dynamic_smem(size_t bytes) {
    static std::atomic<uint64_t> allowed{0}, refused{0};  // device bits
    int dev = 0;
    cudaGetDevice(&dev);
    const uint64_t bit = dev < 64 ? uint64_t(1) << dev : 0;
    if (allowed.load(std::memory_order_relaxed) & bit) return true;
    if (refused.load(std::memory_order_relaxed) & bit) return false;
    int optin = 0;
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    const bool ok = bytes <= size_t(optin) &&
                    cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)) == cudaSuccess;
    (ok ? allowed : refused).fetch_or(bit, std::memory_order_relaxed);
    return ok;
}

// How many blocks of kKernel (threads, smem dynamic bytes: the same at every call)
// one multiprocessor of the current device holds, asked once per device.
template <auto kKernel>
int blocks_per_sm(int threads, size_t smem) {
    static std::atomic<int> per_device[64];  // 0: not asked yet
    int dev = 0;
    cudaGetDevice(&dev);
    if (dev < 64)
        if (const int known = per_device[dev].load(std::memory_order_relaxed)) return known;
    int n = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kKernel, threads, smem);
    n = n > 0 ? n : 1;
    if (dev < 64) per_device[dev].store(n, std::memory_order_relaxed);
    return n;
}

// kernel<<<grid, block, smem, stream>>>(args...); errors are left for
// cudaGetLastError, as with <<<>>> (CudaBackend::check_launch reads them).
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args&&... args) {
    cudaLaunchAttribute pdl[1];
    pdl[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    pdl[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = pdl;
    cfg.numAttrs = pdl_launches() ? 1 : 0;
#ifdef KILN_CUDA_TRACE
    trace_note_launch(reinterpret_cast<const void*>(kernel), grid.x * grid.y * grid.z);
    const TraceHostCall timed(TraceHostCall::kLaunch);
#endif
    (void)cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

}  // namespace kiln::cuda
