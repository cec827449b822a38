#include "cli/info_devices.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/gpu_devices.h"

namespace kiln::cli {

namespace {
std::string gib(uint64_t b) {
    char s[32];
    std::snprintf(s, sizeof s, "%.1f GiB", double(b) / double(1ull << 30));
    return s;
}
}  // namespace

void print_devices(bool as_json) {
    const std::vector<GpuDevice> devices = list_gpu_devices();
    const BackendChoice choice = auto_backend();
    if (as_json) {
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const GpuDevice& d : devices)
            list.push_back({{"backend", d.backend}, {"device", d.index}, {"name", d.name}, {"kind", d.kind},
                            {"memory_bytes", d.memory_bytes}, {"free_bytes", d.free_bytes}, {"detail", d.detail}});
        nlohmann::ordered_json j = {{"devices", list}, {"auto", {{"backend", choice.backend}, {"device", choice.device}}}};
        std::puts(j.dump(2).c_str());
        return;
    }
    if (devices.empty()) {
        std::puts("no GPU found (this kiln has "
#ifdef KILN_HAVE_CUDA
                  "CUDA"
#else
                  "no CUDA"
#endif
                  " and "
#ifdef KILN_HAVE_VULKAN
                  "Vulkan"
#else
                  "no Vulkan"
#endif
                  " support); models run on the CPU");
        return;
    }
    std::printf("%-7s %-7s %-40s %-11s %10s  %s\n", "backend", "device", "name", "kind", "memory", "detail");
    for (const GpuDevice& d : devices) {
        std::string mem = gib(d.memory_bytes);
        if (d.free_bytes) mem = gib(d.free_bytes) + " free of " + mem;
        std::printf("%-7s %-7d %-40s %-11s %10s  %s\n", d.backend.c_str(), d.index, d.name.c_str(), d.kind.c_str(),
                    mem.c_str(), d.detail.c_str());
    }
    std::printf("--backend auto uses: %s", choice.backend.c_str());
    if (choice.backend != "cpu") std::printf(" --device %d", choice.device);
    std::printf("\n");
}

}  // namespace kiln::cli
