#pragma once
// Which descriptor bindings a compute shader may write, read off its SPIR-V:
// a storage buffer declared `readonly` carries NonWritable. The stream uses it
// to put a barrier only between dispatches that touch the same buffer with at
// least one write (vulkan_device.cpp), without each op spelling out its outputs.
#include <cstddef>
#include <cstdint>

namespace kiln::vk {

// Bit b set: binding b (of descriptor set 0) is a buffer the module may write.
// Bindings it does not declare are clear. A malformed module (a kiln build
// problem) reads as writing every binding, which only costs barriers.
uint32_t spirv_written_bindings(const uint32_t* words, size_t n_words);

}  // namespace kiln::vk
