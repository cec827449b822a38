#pragma once
// Listing the Vulkan devices kiln can run on (`kiln info --devices`), and
// picking one by index (`--device N`).
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// A Vulkan failure a user can act on (no driver, out of device memory, ...).
class VulkanError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct VulkanDeviceInfo {
    int index = 0;                   // what --device takes
    std::string name;                // VkPhysicalDeviceProperties::deviceName
    std::string type;                // "discrete", "integrated", "virtual", "cpu", "other"
    std::string api_version;         // "1.3.255"
    std::string driver;              // driver name and info when the driver reports them
    uint64_t device_local_bytes = 0; // sum of the DEVICE_LOCAL heaps
    uint32_t subgroup_size = 0;
    bool subgroup_arithmetic = false;  // compute shaders may use subgroupAdd
    bool usable = false;             // Vulkan 1.1 with a compute queue: kiln can run on it
};

// Every physical device the Vulkan loader reports, in its order. An empty list
// when no Vulkan driver is installed; throws VulkanError on other failures.
std::vector<VulkanDeviceInfo> vulkan_list_devices();

}  // namespace kiln
