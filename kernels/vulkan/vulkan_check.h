#pragma once
// Turning VkResult failures into VulkanError messages that say what was being done.
#include <vulkan/vulkan.h>

#include <string>

#include "kernels/vulkan/vulkan_devices.h"

namespace kiln::vk {

const char* result_name(VkResult r);

inline void check(VkResult r, const char* what) {
    if (r != VK_SUCCESS) throw VulkanError(std::string("vulkan: ") + what + " failed: " + result_name(r));
}

// The process's one VkInstance (Vulkan 1.1, no layers): made on first use and
// kept until exit, shared by device listing and every VulkanDevice. Drivers
// handle instance create/destroy cycles worst (with two per backend, NVIDIA's on
// an H200 stopped listing devices after ~25 backends in one process), and a
// process only ever needs one. Throws VulkanError (with a hint to install a
// driver when the loader finds none) and tries again on the next call.
VkInstance instance();

}  // namespace kiln::vk
