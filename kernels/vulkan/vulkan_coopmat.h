#pragma once
// Cooperative matrices for the prompt matmul and attention (matmul_cm.comp,
// attention_cm*.comp): whether a
// device can run that shader, and what device creation must enable for it.
// The shader is written for VK_NV_cooperative_matrix (the GLSL compiler kiln
// builds with has no GL_KHR_cooperative_matrix); NVIDIA's drivers offer it.
#include <vulkan/vulkan.h>

#include <string>
#include <vector>

namespace kiln::vk {

struct CoopmatSupport {
    bool usable = false;  // every requirement of query_coopmat's list is met
    std::string missing;  // else the first one that is not, in words ("no VK_NV_cooperative_matrix")
    std::vector<const char*> extensions;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coopmat{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceShaderFloat16Int8FeaturesKHR float16{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR};
    VkPhysicalDeviceVulkanMemoryModelFeaturesKHR memory_model{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES_KHR};

    // Links the feature structs to enable (only the ones the shader uses set)
    // in front of `next`, for VkDeviceCreateInfo::pNext; call on the object
    // that lives until vkCreateDevice returns.
    void* chain(void* next);
};

// matmul_cm.comp needs: the extensions VK_NV_cooperative_matrix,
// VK_KHR_shader_float16_int8 and VK_KHR_vulkan_memory_model with their
// features cooperativeMatrix, shaderFloat16 and vulkanMemoryModel; 16x8x16
// subgroup matrices of f16 x f16 + f32 in compute shaders; subgroups of 32
// (its eight subgroups each take an eighth of the tile); 47 KiB of shared memory
// (attention_cm128.comp's; matmul_cm_cut.comp takes 40).
CoopmatSupport query_coopmat(VkInstance instance, VkPhysicalDevice phys);

}  // namespace kiln::vk
