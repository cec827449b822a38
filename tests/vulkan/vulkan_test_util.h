#pragma once
// Shared by the Vulkan suites: the device (or a test failure when none is
// there, since CI runs these on lavapipe); data and comparisons come from
// backend_test_util.h.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "kernels/vulkan/vulkan_backend.h"
#include "backend_test_util.h"

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

// KILN_VK_PROFILE as given for the scope (unset when value is nullptr); the device reads it when made
// (tests that need to see which shaders ran make their backend under ProfileVariable("1")).
class ProfileVariable {
public:
    explicit ProfileVariable(const char* value) {
        if (const char* old = std::getenv(kName)) old_ = old;
        if (value) setenv(kName, value, 1);
        else unsetenv(kName);
    }
    ~ProfileVariable() {
        if (old_) setenv(kName, old_->c_str(), 1);
        else unsetenv(kName);
    }

private:
    static constexpr const char* kName = "KILN_VK_PROFILE";
    std::optional<std::string> old_;
};

// Dispatches of `shader` (with or without its _sg suffix) recorded so far by a
// backend made under ProfileVariable("1").
inline uint64_t dispatches(const vk::VulkanBackend& vb, const std::string& shader) {
    uint64_t n = 0;
    for (const auto& e : vb.device().profile()->entries())
        if (e.shader == shader || e.shader == shader + "_sg") n += e.count;
    return n;
}

// The same floats, bit for bit; reports the first difference.
inline void check_same(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i)
        if (std::memcmp(&got[i], &want[i], 4) != 0) {
            FAIL_CHECK(what << ": element " << i << " is " << got[i] << ", expected " << want[i]);
            return;
        }
}

// An op's q8 copy of its output against quantize_q8's: a Q4_0 matmul right
// after the op reads the copy the op wrote; after `add(out, 0)` (same floats,
// a new write) the matmul quantizes out itself. Same bytes in, same bits out.
inline void check_q8_copy(vk::VulkanBackend& vb, const Act& out, const std::string& what) {
    const int64_t n_in = out.n_cols, n_out = 19;
    const HostWeight hw = make_weight(GgmlType::Q4_0, n_in, n_out, 23);
    const Weight w = vb.upload_weight(hw.view);
    auto y1 = device_act(vb, out.n_rows, n_out), y2 = device_act(vb, out.n_rows, n_out);
    auto zero = device_act(vb, out.n_rows, n_in);
    vb.matmul(w, out, y1.act());
    vb.add(out, zero.act(), out);
    vb.matmul(w, out, y2.act());
    check_same(read(vb, y1.act()), read(vb, y2.act()), what + ": matvec on the op's q8 copy");
}

// Device activations in the Vulkan suites (the name they were written with).
using DeviceAct = ActBuffer;

}  // namespace kiln::test
