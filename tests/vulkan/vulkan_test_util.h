#pragma once
// Shared by the Vulkan suites: the device (or a test failure when none is
// there, since CI runs these on lavapipe); data and comparisons come from
// backend_test_util.h.
#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
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

// Device activations in the Vulkan suites (the name they were written with).
using DeviceAct = ActBuffer;

}  // namespace kiln::test
