#pragma once
// The GPUs this build of kiln can run on, over both GPU backends, and the
// choice `--backend auto` (the default) makes from them: CUDA when an NVIDIA
// device is present, else a real (not CPU-emulated) Vulkan device, else the CPU.
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct GpuDevice {
    std::string backend;    // "cuda" or "vulkan"
    int index = 0;          // what --device takes for that backend
    std::string name;
    std::string kind;       // "discrete", "integrated", "cpu" (lavapipe), ...
    uint64_t memory_bytes = 0;  // CUDA: total; Vulkan: device-local heaps
    uint64_t free_bytes = 0;    // CUDA only (0 when unknown)
    std::string detail;     // compute capability, driver, API version
};

// Every device of every compiled-in GPU backend; a backend whose driver is
// missing contributes nothing (never an error).
std::vector<GpuDevice> list_gpu_devices();

struct BackendChoice {
    std::string backend;  // "cuda", "vulkan" or "cpu"
    int device = 0;
};
// What `--backend auto` runs on this machine.
BackendChoice auto_backend();

}  // namespace kiln
