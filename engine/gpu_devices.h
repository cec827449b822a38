#pragma once
// The GPUs this build of kiln can run on, over both GPU backends, and the
// choice `--backend auto` (the default) makes from them: CUDA when an NVIDIA
// device is present, else a real (not CPU-emulated) Vulkan device, else the CPU.
#include <cstdint>
#include <optional>
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

// The memory bandwidth of a GPU, measured (not the datasheet's): read-only
// streaming, the limit for decode, and a device-to-device copy (read + written
// bytes). Only CUDA measures it; other backends give nullopt.
struct GpuBandwidth {
    double read_bytes_per_second = 0;
    double copy_bytes_per_second = 0;
    uint64_t buffer_bytes = 0;
};
std::optional<GpuBandwidth> measure_gpu_bandwidth(const std::string& backend, int device);

struct BackendChoice {
    std::string backend;  // "cuda", "vulkan" or "cpu"
    int device = 0;
};
// What `--backend auto` runs on this machine.
BackendChoice auto_backend();

}  // namespace kiln
