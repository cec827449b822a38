#pragma once
// GPU time per shader, asked for with KILN_VK_PROFILE=1: a timestamp after
// everything before each dispatch and one after the dispatch, in a query pool
// per command buffer of the stream; read after the fence that flush() waits
// on; summed per shader name and printed as a table to stderr when the device
// goes (as llama.cpp's GGML_VK_PERF_LOGGER does). Without the variable the
// device makes no ShaderProfile and records no queries.
//
// Both timestamps of a dispatch are taken at the bottom of the pipe, i.e. when
// every earlier command has finished. Dispatches with no barrier between them
// may overlap on the GPU; each is then charged the time from the previous
// command's end to its own, so the column sums to the stream's busy time and
// the percentages are shares of it.
#include <vulkan/vulkan.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::vk {

class ShaderProfile {
public:
    // A profile when KILN_VK_PROFILE=1 and the queue family writes timestamps;
    // nullptr when the variable is unset or 0, or (said once per process on
    // stderr) when the device cannot time its commands. Another value is an error.
    // dispatches_per_cmd: the most dispatches the stream records in one command buffer.
    static std::unique_ptr<ShaderProfile> from_environment(VkPhysicalDevice phys, VkDevice device, uint32_t queue_family,
                                                           uint32_t dispatches_per_cmd);
    ShaderProfile(VkDevice device, double ns_per_tick, uint32_t valid_bits, uint32_t dispatches_per_cmd);
    ~ShaderProfile();
    ShaderProfile(const ShaderProfile&) = delete;
    ShaderProfile& operator=(const ShaderProfile&) = delete;

    // The stream's hooks. `slot`: the command buffer's index among those taken
    // since the last wait (its query pool). begin() right after vkBeginCommandBuffer;
    // start() and finish() around one vkCmdDispatch; collect() after the fence
    // covering slots [0, n_slots) was waited on, before those command buffers are reused.
    void begin(VkCommandBuffer cmd, size_t slot);
    void start(VkCommandBuffer cmd, size_t slot);
    void finish(VkCommandBuffer cmd, size_t slot, const char* shader);
    void collect(size_t n_slots);

    struct Entry {
        std::string shader;
        uint64_t count = 0;
        double total_us = 0;
        double mean_us() const { return count ? total_us / double(count) : 0.0; }
    };
    // What was collected so far, largest total first.
    std::vector<Entry> entries() const;
    // entries() as a table with each shader's share of the total; "" when nothing ran.
    std::string table(const std::string& device_name) const;

private:
    struct Slot {
        VkQueryPool pool = VK_NULL_HANDLE;
        std::vector<Entry*> shaders;       // per timed dispatch, in recording order
        bool open = false;                  // start() wrote a timestamp that finish() has not closed
    };
    VkDevice device_;
    double ns_per_tick_;
    uint64_t tick_mask_;  // timestamps wrap at timestampValidBits
    uint32_t capacity_;   // dispatches per slot
    std::vector<Slot> slots_;
    std::unordered_map<std::string, Entry> totals_;
    std::vector<uint64_t> ticks_;  // read-back scratch
};

}  // namespace kiln::vk
