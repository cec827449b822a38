#pragma once
// Shared by the Vulkan suites: the device (or a test failure when none is
// there, since CI runs these on lavapipe), random data and comparisons.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/vulkan/vulkan_backend.h"

namespace kiln::test {

// The backend on device 0, or nullptr (after failing the test) when Vulkan is
// missing; with KILN_VULKAN_OPTIONAL=1 a missing device only skips. Integer
// dot products (8-bit activations) only when asked, and then wherever the
// device has them: most op tests compare with the float reference at float precision.
inline std::unique_ptr<vk::VulkanBackend> vulkan_backend(bool subgroups = true, bool int_dot = false, bool coopmat = true) {
    try {
        return std::make_unique<vk::VulkanBackend>(
            vk::VulkanOptions{0, subgroups, coopmat, int_dot ? vk::IntDot::On : vk::IntDot::Off});
    } catch (const VulkanError& e) {
        const char* opt = std::getenv("KILN_VULKAN_OPTIONAL");
        if (opt && std::string(opt) == "1") {
            MESSAGE("skipped: " << std::string(e.what()));
            return nullptr;
        }
        // As a std::string: doctest prints a bare const char* as a pointer.
        FAIL("no Vulkan device (" << std::string(e.what())
                                  << "); install mesa-vulkan-drivers, or set KILN_VULKAN_OPTIONAL=1 to skip");
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

// Host Act over a dense vector.
inline Act host_act(std::vector<float>& v, int64_t rows, int64_t cols) { return Act{v.data(), rows, cols, cols}; }

// A device activation filled from / read into dense host rows.
struct DeviceAct {
    ActBuffer buf;
    Act act() const { return buf.act(); }
};
inline DeviceAct device_act(Backend& b, int64_t rows, int64_t cols, const std::vector<float>* init = nullptr) {
    DeviceAct d{b.alloc_act(rows, cols)};
    if (init) b.write_act(d.act(), init->data());
    return d;
}
inline std::vector<float> read(Backend& b, const Act& a) {
    std::vector<float> v(size_t(a.n_rows * a.n_cols));
    b.read_act(a, v.data());
    return v;
}

// Every element within atol + rtol * |expected|; reports the first miss.
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
