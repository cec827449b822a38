#pragma once
// Records the kernels of a small step (a decode step: hundreds of launches of a
// few microseconds each) into a CUDA graph and replays it as one launch, so the
// GPU runs them back to back instead of waiting for the host between launches.
//
// A step's first ops are launched directly (the GPU starts on them while the host
// records the rest); recording starts after them and ends at the next point where
// the host needs the stream (a read, a synchronize, an allocation): flush()
// then launches what was recorded. A step shaped like the last one updates the
// instantiated graph in place (new pointers, sizes, positions) rather than
// instantiating it again.
//
// A step is recorded in segments of 4, 8, 16, then kOpsPerSegment ops, each
// launched as soon as it is recorded: the GPU runs a segment while the host
// records the next, so the host's recording time (2-8 us an op, ~0.5-1 ms for a 7B
// step) no longer adds to every step.
#include <cstddef>
#include <vector>

struct CUstream_st;
struct CUgraphExec_st;

namespace kiln::cuda {

class StepGraph {
public:
    // KILN_CUDA_GRAPHS=0 in the environment turns recording off (for bisecting).
    StepGraph();
    ~StepGraph();
    StepGraph(const StepGraph&) = delete;
    StepGraph& operator=(const StepGraph&) = delete;

    bool enabled() const { return enabled_; }
    bool recording() const { return recording_; }
    // Opens a step (its first ops direct, then recording) unless one is open (or disabled).
    void begin(CUstream_st* stream);
    // Ends a recording and launches it on the stream; a no-op when not recording.
    void flush(CUstream_st* stream);
    // After each op: launches the segment recorded so far once it is long enough.
    void op_done(CUstream_st* stream);
    // KILN_CUDA_SEGMENT_OPS=N sets it (for A/B runs).
    static constexpr int kOpsPerSegment = 32;

    // For benchmarks and tests: steps launched as graphs, and how many of them
    // needed a new instantiation (the rest were updated in place).
    unsigned long long launches() const { return launches_; }
    unsigned long long instantiations() const { return instantiations_; }

private:
    void launch_segment(CUstream_st* stream);  // ends the capture, updates or instantiates, launches
    void start_capture(CUstream_st* stream);
    bool enabled_ = true;
    bool recording_ = false;
    int ops_per_segment_ = kOpsPerSegment;
    // A step's first ops are launched directly, before any recording: the GPU starts
    // at once instead of after the host has recorded a segment (H200, 7B tg128, same run:
    // Q4_0 590.6 / 601.6 -> 606.6 / 601.5, Q4_K_M 512.0 / 522.7 -> 516.2 / 526.0).
    // KILN_CUDA_DIRECT_OPS=N sets how many.
    int direct_ops_ = 8;
    bool direct_ = false;  // launching those now
    int ops_ = 0;         // in the segment being recorded, or launched directly so far
    size_t segment_ = 0;  // its index in the step
    std::vector<CUgraphExec_st*> execs_;  // per segment of the last steps
    unsigned long long launches_ = 0, instantiations_ = 0;
};

}  // namespace kiln::cuda
