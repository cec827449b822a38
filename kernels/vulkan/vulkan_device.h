#pragma once
// One logical Vulkan device as kiln drives it: a compute queue, memory-heap
// aware buffer allocation, a pipeline per embedded shader, and a "stream":
// command buffers that collect every op until someone needs results
// (read_act / synchronize). The stream hands the GPU a command buffer every
// kDispatchesPerSubmit dispatches without waiting, so the GPU runs the start of
// a forward pass while the rest is recorded; only flush() waits.
//
// Per dispatch the stream records no more than the work needs: a barrier only
// when the dispatch touches a buffer that a dispatch since the last barrier
// wrote (or writes one that such a dispatch read), knowing which bindings a
// shader writes from its SPIR-V; and descriptor sets made once per tuple of
// buffers and reused (a decode step binds the same buffers every token).
//
// Device buffers have addresses: each allocation reserves an inaccessible
// range of host address space (PROT_NONE) of its size, and Act::data /
// Weight::device point into it. Pointer arithmetic on them (Act::rows) works,
// resolve() maps any such pointer back to (buffer, byte offset), and a
// dereference on the host faults at once instead of reading stale memory.
#include <vulkan/vulkan.h>

#include <cstdint>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/vulkan/vulkan_devices.h"
#include "kernels/vulkan/vulkan_profile.h"

namespace kiln::vk {

struct DeviceBuffer;

// Bindings every kiln shader may use (0: weights, 1..5: activations, arena, KV;
// 6, 7: more of them for the fused ops, e.g. rope_kv_store.comp's values).
inline constexpr uint32_t kMaxBindings = 8;
inline constexpr uint32_t kPushBytes = 128;

// 8-bit integer dot products for the matrix-vector shader (q8 activations).
// Auto: where the device reports them accelerated (not on lavapipe, which
// emulates them), or as the environment says: KILN_VK_INT_DOT=0 never,
// KILN_VK_INT_DOT=1 whenever the device has them. On / Off: tests.
enum class IntDot { Auto, Off, On };

class VulkanDevice : public std::enable_shared_from_this<VulkanDevice> {
public:
    // Device `index` of vulkan_list_devices(); allow_subgroups = false forces
    // the shared-memory shader variants, allow_coopmat = false the float
    // matmul where cooperative matrices exist (tests run both), int_dot as above.
    VulkanDevice(int index, bool allow_subgroups, bool allow_coopmat = true, IntDot int_dot = IntDot::Auto);
    ~VulkanDevice();
    VulkanDevice(const VulkanDevice&) = delete;
    VulkanDevice& operator=(const VulkanDevice&) = delete;

    const std::string& name() const { return name_; }
    VkInstance instance() const { return instance_; }
    bool subgroups() const { return subgroups_; }
    // The prompt matmul runs on cooperative matrices (matmul_cm.comp); else
    // coopmat_missing() says why not.
    bool coopmat() const { return coopmat_; }
    const std::string& coopmat_missing() const { return coopmat_missing_; }
    // 8-bit integer dot products in shaders (VK_KHR_shader_integer_dot_product) enabled and used.
    bool int_dot() const { return int_dot_; }
    uint64_t max_buffer_bytes() const { return max_buffer_bytes_; }

    // ---- memory ------------------------------------------------------------
    // A device-local buffer with an address (see above); `what` names it in errors.
    // The buffer keeps this device alive (so make devices with std::make_shared).
    std::shared_ptr<DeviceBuffer> alloc(uint64_t bytes, const char* what);
    // The buffer holding address p and p's byte offset in it; nullptr when p
    // is not a device address of this device.
    const DeviceBuffer* resolve(const void* p, uint64_t* offset) const;
    // Copies host bytes into a buffer now (load time: waits for the copy).
    void upload_now(const DeviceBuffer& dst, uint64_t offset, const void* src, uint64_t bytes);

    // ---- stream --------------------------------------------------------------
    // Makes room for an op needing `words` arena words and `sets` dispatches
    // (submitting what is recorded when the arena or descriptor pool is full),
    // so that arena slices taken next stay valid until the op is recorded.
    void reserve(uint64_t words, uint32_t sets);
    // A slice of the host-visible arena, readable by the next dispatches: its
    // host pointer and its offset in 32-bit words. Call reserve() first.
    uint32_t* arena(uint64_t words, uint32_t* word_offset);
    VkBuffer arena_buffer() const;
    // Records a dispatch of pipeline `shader` with up to kMaxBindings buffers
    // (VK_NULL_HANDLE: unused) followed by a barrier ordering it before
    // everything recorded after it.
    void dispatch(const char* shader, const VkBuffer (&bindings)[kMaxBindings], const void* push, uint32_t push_bytes,
                  uint32_t gx, uint32_t gy, uint32_t gz);
    // Records buffer copies (then a barrier).
    void copy(VkBuffer src, VkBuffer dst, const VkBufferCopy* regions, uint32_t n);
    void fill_zero(VkBuffer dst, uint64_t offset, uint64_t bytes);
    // Records a copy of regions of src into the readback buffer, submits, waits,
    // and returns the readback memory (valid until the next call).
    const uint8_t* read_back(VkBuffer src, const VkBufferCopy* regions, uint32_t n, uint64_t total_bytes);
    // Submits what is recorded and waits for it.
    void flush();
    // A clock that ticks at every recorded command writing a buffer, and its
    // time at the last recorded write of b (UINT64_MAX when not known): a
    // result derived from b at time T is still current while last_write(b) < T.
    uint64_t write_clock() const { return write_clock_; }
    uint64_t last_write(VkBuffer b) const;
    // GPU time per shader so far (vulkan_profile.h); nullptr unless KILN_VK_PROFILE=1.
    const ShaderProfile* profile() const { return profile_.get(); }

private:
    friend struct DeviceBuffer;
    struct HostBuffer {
        VkBuffer buf = VK_NULL_HANDLE;
        VkDeviceMemory mem = VK_NULL_HANDLE;
        uint64_t size = 0;
        uint8_t* mapped = nullptr;
    };
    // The constructor's part after vkCreateDevice; destroy() undoes whatever of it was done.
    void create_objects();
    void destroy();
    uint32_t find_memory_type(uint32_t type_bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags nice) const;
    // Host-visible coherent memory, of a type with the `nice` properties where there is one.
    HostBuffer make_host_buffer(uint64_t bytes, VkBufferUsageFlags usage, VkMemoryPropertyFlags nice);
    void free_host_buffer(HostBuffer& b);
    void release(DeviceBuffer* b);
    struct Pipeline {
        VkPipeline pipeline = VK_NULL_HANDLE;
        uint32_t written = 0;  // bit b: the shader may write binding b
    };
    const Pipeline& pipeline(const char* shader);
    using BindingSet = std::array<VkBuffer, kMaxBindings>;
    struct BindingSetHash {
        size_t operator()(const BindingSet& b) const;
    };
    VkDescriptorSet descriptor_set(const BindingSet& b);
    void begin_if_needed();
    // Hands the recorded commands to the queue without waiting.
    void submit_recorded(VkFence fence);
    void barrier();
    void barrier_if_hazard(const BindingSet& b, uint32_t written);

    VkInstance instance_ = VK_NULL_HANDLE;  // the process's (vk::instance()), not ours to destroy
    VkPhysicalDevice phys_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    uint32_t queue_family_ = 0;
    std::string name_;
    bool subgroups_ = false;
    bool coopmat_ = false;
    std::string coopmat_missing_;
    bool int_dot_ = false;
    uint64_t max_buffer_bytes_ = 0;
    VkPhysicalDeviceMemoryProperties mem_props_{};
    std::vector<uint64_t> heap_used_;  // bytes kiln allocated per memory heap

    VkCommandPool cmd_pool_ = VK_NULL_HANDLE;
    std::vector<VkCommandBuffer> cmds_;  // taken in order; all free again after flush()
    size_t n_cmd_used_ = 0;
    VkCommandBuffer cmd_ = VK_NULL_HANDLE;  // the one recording
    uint32_t cmd_dispatches_ = 0;           // dispatches in cmd_
    bool submitted_unwaited_ = false;       // command buffers handed over since the last wait
    VkFence fence_ = VK_NULL_HANDLE;
    bool recording_ = false;
    // Buffers written / only read by commands recorded since the last barrier.
    std::vector<VkBuffer> written_since_barrier_, read_since_barrier_;
    uint64_t write_clock_ = 0;
    std::unordered_map<VkBuffer, uint64_t> last_write_;
    void mark_written(VkBuffer b) { last_write_[b] = ++write_clock_; }
    VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
    VkPipelineLayout pipeline_layout_ = VK_NULL_HANDLE;
    VkDescriptorPool desc_pool_ = VK_NULL_HANDLE;
    std::unordered_map<BindingSet, VkDescriptorSet, BindingSetHash> sets_;
    std::unordered_map<std::string, Pipeline> pipelines_;

    HostBuffer arena_;          // host-visible inputs of recorded ops
    uint64_t arena_used_ = 0;   // words
    HostBuffer readback_;
    HostBuffer dummy_;          // bound to unused bindings

    std::map<uintptr_t, DeviceBuffer*> by_address_;
    std::unique_ptr<ShaderProfile> profile_;  // KILN_VK_PROFILE=1 only: no queries otherwise
};

// A device buffer; frees itself (after the work recorded so far) when the last owner goes.
struct DeviceBuffer {
    VulkanDevice* device = nullptr;
    VkBuffer buf = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    uint64_t size = 0;
    uint32_t heap = 0;
    uint8_t* mapped = nullptr;  // when the memory is also host-visible (integrated GPUs, lavapipe)
    void* address = nullptr;    // start of the reserved address range
    uint64_t reserved = 0;
};

}  // namespace kiln::vk
