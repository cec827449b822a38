#include "kernels/vulkan/vulkan_devices.h"

#include "kernels/vulkan/vulkan_check.h"

namespace kiln {
namespace vk {

const char* result_name(VkResult r) {
    switch (r) {
        case VK_SUCCESS: return "VK_SUCCESS";
        case VK_NOT_READY: return "VK_NOT_READY";
        case VK_TIMEOUT: return "VK_TIMEOUT";
        case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
        case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
        case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
        case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
        case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
        case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
        case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
        case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
        case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
        case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
        default: return "VkResult error";
    }
}

namespace {
VkInstance create_instance() {
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "kiln";
    app.apiVersion = VK_API_VERSION_1_1;
    VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ci.pApplicationInfo = &app;
    VkInstance inst = VK_NULL_HANDLE;
    const VkResult r = vkCreateInstance(&ci, nullptr, &inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        throw VulkanError("vulkan: no Vulkan 1.1 driver found; install your GPU's Vulkan driver "
                          "(Debian: mesa-vulkan-drivers for AMD/Intel or the CPU fallback lavapipe)");
    check(r, "vkCreateInstance");
    return inst;
}
}  // namespace

VkInstance instance() {
    // Never destroyed: at exit the driver may already be tearing itself down.
    static const VkInstance shared = create_instance();
    return shared;
}

}  // namespace vk

namespace {
std::string version_string(uint32_t v) {
    return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
           std::to_string(VK_API_VERSION_PATCH(v));
}

const char* type_name(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
        default: return "other";
    }
}
}  // namespace

std::vector<VulkanDeviceInfo> vulkan_list_devices() {
    VkInstance inst;
    try {
        inst = vk::instance();
    } catch (const VulkanError&) {
        return {};  // no driver: nothing to list
    }
    uint32_t n = 0;
    vk::check(vkEnumeratePhysicalDevices(inst, &n, nullptr), "vkEnumeratePhysicalDevices");
    std::vector<VkPhysicalDevice> devs(n);
    vk::check(vkEnumeratePhysicalDevices(inst, &n, devs.data()), "vkEnumeratePhysicalDevices");

    std::vector<VulkanDeviceInfo> out;
    for (uint32_t i = 0; i < n; ++i) {
        VkPhysicalDeviceSubgroupProperties sg{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
        VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
        VkPhysicalDeviceProperties base;
        vkGetPhysicalDeviceProperties(devs[i], &base);
        const bool v11 = base.apiVersion >= VK_API_VERSION_1_1;
        const bool v12 = base.apiVersion >= VK_API_VERSION_1_2;
        p2.pNext = &sg;
        if (v12) sg.pNext = &drv;
        if (v11) vkGetPhysicalDeviceProperties2(devs[i], &p2);

        VulkanDeviceInfo info;
        info.index = int(i);
        info.name = base.deviceName;
        info.type = type_name(base.deviceType);
        info.api_version = version_string(base.apiVersion);
        if (v12) info.driver = std::string(drv.driverName) + " " + drv.driverInfo;
        info.subgroup_size = v11 ? sg.subgroupSize : 0;
        info.subgroup_arithmetic = v11 && (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                                   (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                                   (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
        VkPhysicalDeviceMemoryProperties mem;
        vkGetPhysicalDeviceMemoryProperties(devs[i], &mem);
        for (uint32_t h = 0; h < mem.memoryHeapCount; ++h)
            if (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) info.device_local_bytes += mem.memoryHeaps[h].size;
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(devs[i], &nq, nullptr);
        std::vector<VkQueueFamilyProperties> qf(nq);
        vkGetPhysicalDeviceQueueFamilyProperties(devs[i], &nq, qf.data());
        bool compute = false;
        for (const auto& q : qf) compute |= (q.queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
        info.usable = v11 && compute;
        out.push_back(std::move(info));
    }
    return out;
}

}  // namespace kiln
