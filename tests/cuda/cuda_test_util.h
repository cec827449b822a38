#pragma once
// Shared by the CUDA suites (labelled "gpu": they need an NVIDIA GPU, so CI,
// which has none, skips them with `ctest -LE gpu`): the backend, random data,
// device activations and comparisons.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"

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

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

inline Act host_act(std::vector<float>& v, int64_t rows, int64_t cols) { return Act{v.data(), rows, cols, cols}; }

inline ActBuffer device_act(Backend& b, int64_t rows, int64_t cols, const std::vector<float>* init = nullptr) {
    ActBuffer d = b.alloc_act(rows, cols);
    if (init) b.write_act(d.act(), init->data());
    return d;
}
inline std::vector<float> read(Backend& b, const Act& a) {
    std::vector<float> v(size_t(a.n_rows * a.n_cols));
    b.read_act(a, v.data());
    return v;
}

// Every element within atol + rtol * |expected| (NaN never passes); reports the first miss.
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, float atol, float rtol,
                        const std::string& what) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        const float tol = atol + rtol * std::fabs(want[i]);
        if (!(std::fabs(got[i] - want[i]) <= tol)) {
            FAIL_CHECK(what << ": element " << i << " is " << got[i] << ", expected " << want[i]);
            return;
        }
    }
}

}  // namespace kiln::test
