#include "engine/gpu_devices.h"

#ifdef KILN_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif
#ifdef KILN_HAVE_VULKAN
#include "kernels/vulkan/vulkan_devices.h"
#endif

namespace kiln {

std::vector<GpuDevice> list_gpu_devices() {
    std::vector<GpuDevice> out;
#ifdef KILN_HAVE_CUDA
    for (const cuda::CudaDeviceInfo& d : cuda::cuda_list_devices())
        out.push_back({"cuda", d.index, d.name, "discrete", d.total_bytes, d.free_bytes,
                       "compute " + std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) + ", " +
                           std::to_string(d.n_sm) + " SMs"});
#endif
#ifdef KILN_HAVE_VULKAN
    try {
        for (const VulkanDeviceInfo& d : vulkan_list_devices()) {
            if (!d.usable) continue;
            out.push_back({"vulkan", d.index, d.name, d.type, d.device_local_bytes, 0,
                           "Vulkan " + d.api_version + (d.driver.empty() ? "" : ", " + d.driver)});
        }
    } catch (const VulkanError&) {
        // A broken loader or driver only means no Vulkan device to offer.
    }
#endif
    return out;
}

std::optional<GpuBandwidth> measure_gpu_bandwidth(const std::string& backend, int device) {
#ifdef KILN_HAVE_CUDA
    if (backend == "cuda") {
        const cuda::CudaBandwidth bw = cuda::cuda_measure_bandwidth(device);
        return GpuBandwidth{bw.read_bytes_per_second, bw.copy_bytes_per_second, bw.buffer_bytes};
    }
#endif
    (void)backend;
    (void)device;
    return std::nullopt;
}

BackendChoice auto_backend() {
    const std::vector<GpuDevice> devices = list_gpu_devices();
    for (const GpuDevice& d : devices)
        if (d.backend == "cuda") return {"cuda", d.index};
    // lavapipe and other software rasterisers are slower than our CPU kernels.
    for (const GpuDevice& d : devices)
        if (d.backend == "vulkan" && d.kind == "discrete") return {"vulkan", d.index};
    for (const GpuDevice& d : devices)
        if (d.backend == "vulkan" && d.kind == "integrated") return {"vulkan", d.index};
    return {"cpu", 0};
}

}  // namespace kiln
