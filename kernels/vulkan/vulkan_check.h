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

// The instance kiln uses (Vulkan 1.1, no layers); throws VulkanError with a hint
// to install a driver when the loader finds none.
VkInstance create_instance();

}  // namespace kiln::vk
