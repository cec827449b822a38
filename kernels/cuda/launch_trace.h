#pragma once
// The kernel timeline of a trace build (CMake -DKILN_CUDA_TRACE=ON; a normal
// build compiles none of it). Block 0 of every kernel stamps the global timer
// when it starts and when its griddepcontrol.wait returns (launch.cuh). In a
// stream of dependent kernels the wait returns once the previous kernel has
// finished, so the time from one kernel's wait to the next's is what that
// kernel adds to the step, its tail and the boundary included, measured where
// it runs (graphs, PDL, the caches as a real step leaves them).
#include <cstdint>

namespace kiln::cuda {

// Slot 0 counts the stamps, slots 1.. hold them (%globaltimer, ns), in the
// order block 0 of each kernel returned from its wait. A kernel that waits
// twice in thread 0 would stamp twice: none does (the report checks counts).
struct TraceStamp {
    uint64_t ns;
};
inline constexpr uint64_t kTraceSlots = uint64_t(1) << 21;

// Each .cu file's setter of its copy of the buffer pointer (launch.cuh), and
// the call that allocates the buffer and runs them (the backend, at start).
void trace_register_attach(void (*attach)(TraceStamp*));
void trace_attach_all();
// The launches in order: kernel, grid size.
void trace_note_launch(const void* kernel, unsigned grid_blocks);
// Host time, reported with the table: each backend op's (a step's ~200 ops are
// recorded while the GPU runs earlier ones, so they must take less than the kernels
// they launch) and the CUDA calls' among them, by kind.
class TraceHostOp {
public:
    explicit TraceHostOp(const char* op);
    ~TraceHostOp();
    TraceHostOp(const TraceHostOp&) = delete;
    TraceHostOp& operator=(const TraceHostOp&) = delete;

private:
    const char* op_;
    uint64_t t0_ns_;
};
class TraceHostCall {
public:
    // kSegment: a graph segment's end of capture, update (or instantiation) and launch.
    enum Kind { kLaunch, kSegment, kBeginCapture, kStagingCopy, kKinds };
    explicit TraceHostCall(Kind kind);
    ~TraceHostCall();
    TraceHostCall(const TraceHostCall&) = delete;
    TraceHostCall& operator=(const TraceHostCall&) = delete;

private:
    Kind kind_;
    uint64_t t0_ns_;
};
// Scoped host timers for the host code: nothing outside a trace build.
#ifdef KILN_CUDA_TRACE
#define KILN_TRACE_HOST_OP(name) const ::kiln::cuda::TraceHostOp kiln_trace_host_op_{name}
#define KILN_TRACE_HOST_CALL(kind) \
    const ::kiln::cuda::TraceHostCall kiln_trace_host_call_ { ::kiln::cuda::TraceHostCall::kind }
#else
#define KILN_TRACE_HOST_OP(name)
#define KILN_TRACE_HOST_CALL(kind)
#endif
// The next launch starts a new graph segment (step_graph.h), marked in the tail.
void trace_note_segment();
// Prints, per kernel and grid size, how many launches and the mean time from
// its wait to the next kernel's, to stderr; with KILN_CUDA_TRACE_TAIL=N also the
// last N launches one by one (a step's timeline, '*' where a graph segment
// starts); then forgets what was traced.
void trace_report();

}  // namespace kiln::cuda
