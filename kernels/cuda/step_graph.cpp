#include "kernels/cuda/step_graph.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_backend.h"

namespace kiln::cuda {

namespace {
void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw CudaError(std::string("cuda backend: ") + what + " failed: " + cudaGetErrorName(e) + " (" +
                        cudaGetErrorString(e) + "); KILN_CUDA_GRAPHS=0 runs without graphs");
}
}  // namespace

StepGraph::StepGraph() {
    const char* env = std::getenv("KILN_CUDA_GRAPHS");
    enabled_ = !(env && std::strcmp(env, "0") == 0);
}

StepGraph::~StepGraph() {
    if (exec_) cudaGraphExecDestroy(exec_);
}

void StepGraph::begin(CUstream_st* stream) {
    if (!enabled_ || recording_) return;
    // Relaxed: the host may still allocate while recording (allocations flush first anyway).
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
    recording_ = true;
}

void StepGraph::flush(CUstream_st* stream) {
    if (!recording_) return;
    recording_ = false;
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(stream, &graph), "recording a step (cudaStreamEndCapture)");
    if (!graph) return;
    bool updated = false;
    if (exec_) {
        cudaGraphExecUpdateResultInfo info{};
        updated = cudaGraphExecUpdate(exec_, graph, &info) == cudaSuccess;
        if (!updated) {
            cudaGetLastError();  // a different shape of step: instantiate anew
            cudaGraphExecDestroy(exec_);
            exec_ = nullptr;
        }
    }
    if (!updated) {
        const cudaError_t e = cudaGraphInstantiate(&exec_, graph, 0);
        if (e != cudaSuccess) {
            cudaGraphDestroy(graph);
            exec_ = nullptr;
            check(e, "cudaGraphInstantiate");
        }
        ++instantiations_;
    }
    const cudaError_t e = cudaGraphLaunch(exec_, stream);
    cudaGraphDestroy(graph);
    check(e, "cudaGraphLaunch");
    ++launches_;
}

}  // namespace kiln::cuda
