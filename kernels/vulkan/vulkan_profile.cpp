#include "kernels/vulkan/vulkan_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "kernels/vulkan/vulkan_check.h"

namespace kiln::vk {

std::unique_ptr<ShaderProfile> ShaderProfile::from_environment(VkPhysicalDevice phys, VkDevice device, uint32_t queue_family,
                                                               uint32_t dispatches_per_cmd) {
    const char* env = std::getenv("KILN_VK_PROFILE");
    if (!env || !*env || std::strcmp(env, "0") == 0) return nullptr;
    if (std::strcmp(env, "1") != 0)
        throw VulkanError(std::string("vulkan: KILN_VK_PROFILE is '") + env +
                          "'; set it to 1 for a per-shader GPU time profile, or unset it");
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, nullptr);
    std::vector<VkQueueFamilyProperties> qf(nq);
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, qf.data());
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(phys, &props);
    const uint32_t bits = queue_family < nq ? qf[queue_family].timestampValidBits : 0;
    if (bits == 0 || props.limits.timestampPeriod <= 0.0f) {
        static std::once_flag said;
        std::call_once(said, [&] {
            std::fprintf(stderr, "kiln: KILN_VK_PROFILE=1 ignored: %s cannot time commands on its compute queue "
                                 "(timestampValidBits 0); no profile\n", props.deviceName);
        });
        return nullptr;
    }
    return std::make_unique<ShaderProfile>(device, double(props.limits.timestampPeriod), bits, dispatches_per_cmd);
}

ShaderProfile::ShaderProfile(VkDevice device, double ns_per_tick, uint32_t valid_bits, uint32_t dispatches_per_cmd)
    : device_(device),
      ns_per_tick_(ns_per_tick),
      tick_mask_(valid_bits >= 64 ? ~0ull : (1ull << valid_bits) - 1),
      capacity_(dispatches_per_cmd),
      ticks_(2 * size_t(dispatches_per_cmd)) {}

ShaderProfile::~ShaderProfile() {
    for (Slot& s : slots_) vkDestroyQueryPool(device_, s.pool, nullptr);
}

void ShaderProfile::begin(VkCommandBuffer cmd, size_t slot) {
    if (slot >= slots_.size()) slots_.resize(slot + 1);
    Slot& s = slots_[slot];
    if (!s.pool) {
        VkQueryPoolCreateInfo qpci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        qpci.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qpci.queryCount = 2 * capacity_;
        check(vkCreateQueryPool(device_, &qpci, nullptr, &s.pool), "vkCreateQueryPool (KILN_VK_PROFILE)");
    }
    // Queries must be reset before they are written again; the reset runs in
    // the command buffer's order, before its first timestamp.
    vkCmdResetQueryPool(cmd, s.pool, 0, 2 * capacity_);
    s.shaders.clear();
    s.open = false;
}

void ShaderProfile::start(VkCommandBuffer cmd, size_t slot) {
    Slot& s = slots_[slot];
    // The stream submits before a command buffer holds more than capacity_
    // dispatches; should that change, the extra ones go untimed rather than
    // writing past the pool.
    s.open = s.shaders.size() < capacity_;
    if (s.open) vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s.pool, uint32_t(2 * s.shaders.size()));
}

void ShaderProfile::finish(VkCommandBuffer cmd, size_t slot, const char* shader) {
    Slot& s = slots_[slot];
    if (!s.open) return;
    s.open = false;
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s.pool, uint32_t(2 * s.shaders.size() + 1));
    auto [it, added] = totals_.try_emplace(shader);
    if (added) it->second.shader = shader;
    s.shaders.push_back(&it->second);
}

void ShaderProfile::collect(size_t n_slots) {
    for (size_t i = 0; i < std::min(n_slots, slots_.size()); ++i) {
        Slot& s = slots_[i];
        const uint32_t n = uint32_t(2 * s.shaders.size());
        if (n == 0) continue;
        check(vkGetQueryPoolResults(device_, s.pool, 0, n, n * sizeof(uint64_t), ticks_.data(), sizeof(uint64_t),
                                    VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
              "vkGetQueryPoolResults (KILN_VK_PROFILE)");
        for (size_t d = 0; d < s.shaders.size(); ++d) {
            // Masked difference: right across one wrap of a narrow counter.
            const uint64_t ticks = (ticks_[2 * d + 1] - ticks_[2 * d]) & tick_mask_;
            Entry& e = *s.shaders[d];
            e.count += 1;
            e.total_us += double(ticks) * ns_per_tick_ * 1e-3;
        }
        s.shaders.clear();
    }
}

std::vector<ShaderProfile::Entry> ShaderProfile::entries() const {
    std::vector<Entry> v;
    for (const auto& [name, e] : totals_)
        if (e.count) v.push_back(e);
    std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
        return a.total_us != b.total_us ? a.total_us > b.total_us : a.shader < b.shader;
    });
    return v;
}

std::string ShaderProfile::table(const std::string& device_name) const {
    const auto v = entries();
    if (v.empty()) return "";
    double total = 0;
    uint64_t count = 0;
    for (const Entry& e : v) total += e.total_us, count += e.count;
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "kiln vulkan profile (%s): %llu dispatches, %.3f ms of GPU time\n", device_name.c_str(),
                  static_cast<unsigned long long>(count), total * 1e-3);
    out += line;
    std::snprintf(line, sizeof line, "%-28s %10s %14s %7s %12s\n", "shader", "count", "total us", "%", "mean us");
    out += line;
    for (const Entry& e : v) {
        std::snprintf(line, sizeof line, "%-28s %10llu %14.1f %6.2f%% %12.2f\n", e.shader.c_str(),
                      static_cast<unsigned long long>(e.count), e.total_us, total > 0 ? 100.0 * e.total_us / total : 0.0,
                      e.mean_us());
        out += line;
    }
    return out;
}

}  // namespace kiln::vk
