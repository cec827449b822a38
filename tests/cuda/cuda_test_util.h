#pragma once
// Shared by the CUDA suites (labelled "gpu": they need an NVIDIA GPU, so CI,
// which has none, skips them with `ctest -LE gpu`): the backend, random data,
// device activations and comparisons (backend_test_util.h).
#include <doctest/doctest.h>

#include <memory>

#include "kernels/cuda/cuda_backend.h"
#include "backend_test_util.h"

namespace kiln::test {

// The backend on device 0; a missing GPU fails the test (these run only where one is).
inline std::unique_ptr<cuda::CudaBackend> cuda_backend() {
    try {
        return std::make_unique<cuda::CudaBackend>();
    } catch (const cuda::CudaError& e) {
        FAIL("no usable CUDA device: " << e.what());
        return nullptr;
    }
}

}  // namespace kiln::test
