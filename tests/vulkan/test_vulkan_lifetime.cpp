// Backends and models made and destroyed one after another in one process (the
// whole test_vulkan binary, a server loading model after model): each must give
// its device and the driver's file descriptors back, and the device list must
// stay intact. When every backend made and destroyed two VkInstances of its own,
// NVIDIA's driver stopped listing devices after ~25 backends in one process.
#include <dirent.h>

#include <memory>
#include <vector>

#include "engine/context.h"
#include "kernels/vulkan/vulkan_check.h"
#include "test_paths.h"
#include "vulkan_test_util.h"

using namespace kiln;

namespace {

size_t open_fds() {
    DIR* d = opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    size_t n = 0;
    while (readdir(d)) ++n;
    closedir(d);
    return n;
}

std::shared_ptr<Model> vulkan_model() {
    LoadOptions o;
    o.n_threads = 2;
    o.backend = "vulkan";
    return load_model(test::model_path("stories260K.gguf"), o);
}

std::weak_ptr<const vk::VulkanDevice> device_of(const Model& m) {
    return dynamic_cast<const vk::VulkanBackend&>(m.backend()).device().weak_from_this();
}

void eval_one_token(const std::shared_ptr<Model>& m) {
    Context ctx(m, ContextOptions{64, 16, GgmlType::F16});
    const int32_t tok = 1;
    CHECK(ctx.eval(std::span<const int32_t>(&tok, 1)).size() == size_t(m->n_vocab()));
}

}  // namespace

TEST_CASE("vulkan: every backend runs on the process's one VkInstance") {
    auto a = test::vulkan_backend();
    if (!a) return;
    auto b = test::vulkan_backend();
    REQUIRE(b);
    CHECK(a->device().instance() == vk::instance());
    CHECK(b->device().instance() == vk::instance());
}

TEST_CASE("vulkan: 40 backends and 10 models made and destroyed in one process give their devices and files back") {
    // The first backend and model load the driver, which may keep files open for the process.
    if (!test::vulkan_backend()) return;
    eval_one_token(vulkan_model());
    const size_t fds_before = open_fds();

    constexpr int kBackends = 40, kModelEvery = 4;
    std::vector<std::weak_ptr<const vk::VulkanDevice>> devices;
    for (int i = 0; i < kBackends; ++i) {
        INFO("after " << i << " backends");
        REQUIRE(!vulkan_list_devices().empty());
        auto b = test::vulkan_backend();
        REQUIRE(b);
        devices.push_back(b->device().weak_from_this());
        b.reset();
        if (i % kModelEvery == 0) {
            auto m = vulkan_model();
            devices.push_back(device_of(*m));
            eval_one_token(m);
        }
    }
    size_t live = 0;
    for (const auto& d : devices) live += d.expired() ? 0 : 1;
    CHECK(live == 0);
    const size_t fds_after = open_fds();
    MESSAGE(devices.size() << " devices made and destroyed; open files " << fds_before << " before, " << fds_after
                           << " after");
    // A leak of one file per backend would add 40; allow a few the driver opens lazily.
    CHECK(fds_after <= fds_before + 4);
}
