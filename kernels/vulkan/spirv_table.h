#pragma once
// The SPIR-V modules embedded at build time (cmake/vulkan.cmake generates the table).
#include <cstddef>
#include <cstdint>
#include <span>

namespace kiln::vk {

struct SpirvModule {
    const char* name;  // shader file name without .comp, plus _<weight type> and _sg variants
    const uint32_t* words;
    size_t n_words;
};

std::span<const SpirvModule> spirv_modules();

}  // namespace kiln::vk
