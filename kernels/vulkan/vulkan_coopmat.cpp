#include "kernels/vulkan/vulkan_coopmat.h"

#include <cstring>

namespace kiln::vk {

namespace {
// The most shared memory a cooperative-matrix shader declares: attention_cm128.comp's
// 64 query rows, a K and a V tile of 32 rows (136 halves each), 4 x 16 x 32 float
// scores, 4 x 16 x 40 halves of P and the tile's cells (attention_cm.glsl).
// matmul_cm_cut.comp takes 40 KiB (36 of tiles, 4 of staging).
constexpr uint32_t kSharedBytes = (64 + 32 + 32) * 136 * 2 + 4 * 16 * 32 * 4 + 4 * 16 * 40 * 2 + 32 * 4 * 3 + 4;

bool has_extension(const std::vector<VkExtensionProperties>& all, const char* name) {
    for (const auto& e : all)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

const char* component_name(VkComponentTypeNV t) {
    switch (t) {
        case VK_COMPONENT_TYPE_FLOAT16_NV: return "f16";
        case VK_COMPONENT_TYPE_FLOAT32_NV: return "f32";
        case VK_COMPONENT_TYPE_SINT8_NV: return "s8";
        case VK_COMPONENT_TYPE_SINT32_NV: return "s32";
        case VK_COMPONENT_TYPE_UINT8_NV: return "u8";
        case VK_COMPONENT_TYPE_UINT32_NV: return "u32";
        default: return "other";
    }
}

// Empty when the device lists the shader's matrices, else what it lists.
std::string missing_16x8x16_f16_f32(VkInstance instance, VkPhysicalDevice phys) {
    auto get = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    if (!get) return "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV is missing";
    uint32_t n = 0;
    if (get(phys, &n, nullptr) != VK_SUCCESS) return "listing its cooperative matrix types failed";
    std::vector<VkCooperativeMatrixPropertiesNV> props(n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
    if (get(phys, &n, props.data()) != VK_SUCCESS) return "listing its cooperative matrix types failed";
    std::string listed;
    for (uint32_t i = 0; i < n; ++i) {
        const auto& p = props[i];
        if (p.MSize == 16 && p.NSize == 8 && p.KSize == 16 && p.AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
            p.BType == VK_COMPONENT_TYPE_FLOAT16_NV && p.CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
            p.DType == VK_COMPONENT_TYPE_FLOAT32_NV && p.scope == VK_SCOPE_SUBGROUP_NV)
            return "";
        listed += (listed.empty() ? "" : ", ") + std::to_string(p.MSize) + "x" + std::to_string(p.NSize) + "x" +
                  std::to_string(p.KSize) + " " + component_name(p.AType) + "*" + component_name(p.BType) + "+" +
                  component_name(p.CType) + (p.scope == VK_SCOPE_SUBGROUP_NV ? "" : " (not subgroup scope)");
    }
    return "no 16x8x16 f16*f16+f32 subgroup matrices (it lists: " + (listed.empty() ? "none" : listed) + ")";
}
}  // namespace

void* CoopmatSupport::chain(void* next) {
    coopmat = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    float16 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR};
    memory_model = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES_KHR};
    coopmat.cooperativeMatrix = VK_TRUE;
    float16.shaderFloat16 = VK_TRUE;
    memory_model.vulkanMemoryModel = VK_TRUE;
    memory_model.pNext = next;
    float16.pNext = &memory_model;
    coopmat.pNext = &float16;
    return &coopmat;
}

CoopmatSupport query_coopmat(VkInstance instance, VkPhysicalDevice phys) {
    CoopmatSupport s;
    uint32_t n = 0;
    std::vector<VkExtensionProperties> exts;
    if (vkEnumerateDeviceExtensionProperties(phys, nullptr, &n, nullptr) == VK_SUCCESS) {
        exts.resize(n);
        if (vkEnumerateDeviceExtensionProperties(phys, nullptr, &n, exts.data()) != VK_SUCCESS) exts.clear();
    }
    s.extensions = {VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME,
                    VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME};
    for (const char* e : s.extensions)
        if (!has_extension(exts, e)) {
            s.missing = std::string("no ") + e;
            return s;
        }

    VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.pNext = &s.coopmat;
    s.coopmat.pNext = &s.float16;
    s.float16.pNext = &s.memory_model;
    vkGetPhysicalDeviceFeatures2(phys, &f2);
    VkPhysicalDeviceCooperativeMatrixPropertiesNV cm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    VkPhysicalDeviceSubgroupProperties sg{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    p2.pNext = &cm;
    cm.pNext = &sg;
    vkGetPhysicalDeviceProperties2(phys, &p2);

    if (!s.coopmat.cooperativeMatrix || !s.float16.shaderFloat16 || !s.memory_model.vulkanMemoryModel)
        s.missing = "one of the features cooperativeMatrix, shaderFloat16, vulkanMemoryModel is off";
    else if (!(cm.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT))
        s.missing = "no cooperative matrices in compute shaders";
    else if (sg.subgroupSize != 32)
        s.missing = "subgroups of " + std::to_string(sg.subgroupSize) + ", not 32";
    else if (p2.properties.limits.maxComputeSharedMemorySize < kSharedBytes)
        s.missing = std::to_string(p2.properties.limits.maxComputeSharedMemorySize) + " bytes of shared memory, fewer than " +
                    std::to_string(kSharedBytes);
    else
        s.missing = missing_16x8x16_f16_f32(instance, phys);
    s.usable = s.missing.empty();
    return s;
}

}  // namespace kiln::vk
