#include "kernels/vulkan/vulkan_device.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/vulkan/spirv_bindings.h"
#include "kernels/vulkan/spirv_table.h"
#include "kernels/vulkan/vulkan_check.h"
#include "kernels/vulkan/vulkan_coopmat.h"

namespace kiln::vk {

namespace {
constexpr uint64_t kArenaBytes = 16ull << 20;
// Distinct binding tuples kept as descriptor sets (a 7B decode step uses ~300).
constexpr uint32_t kMaxSets = 4096;
// Dispatches per command buffer handed to the queue while recording goes on:
// small enough that the GPU starts early in a forward pass (~500 dispatches
// per token for a 7B), large enough that submits stay rare.
constexpr uint32_t kDispatchesPerSubmit = 64;
// Leave a tenth of each heap to the driver and other programs: allocating to
// the last byte makes drivers fail later in unhelpful places.
constexpr double kHeapShare = 0.9;

std::string mib(uint64_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MiB"; }
}  // namespace

VulkanDevice::VulkanDevice(int index, bool allow_subgroups, bool allow_coopmat, IntDot int_dot) {
    // First, so that a driver failing to make an instance says how (the listing reads that as "no driver").
    instance_ = vk::instance();
    const auto infos = vulkan_list_devices();
    if (infos.empty())
        throw VulkanError("vulkan: no Vulkan device found; install a Vulkan driver (Debian: mesa-vulkan-drivers) "
                          "or use the CPU backend");
    if (index < 0 || size_t(index) >= infos.size())
        throw VulkanError("vulkan: device " + std::to_string(index) + " does not exist; there are " +
                          std::to_string(infos.size()) + " (list them with `kiln info --devices`)");
    const VulkanDeviceInfo& info = infos[size_t(index)];
    if (!info.usable)
        throw VulkanError("vulkan: device " + std::to_string(index) + " (" + info.name +
                          ") lacks Vulkan 1.1 or a compute queue; pick another with --device");
    name_ = info.name;
    subgroups_ = allow_subgroups && info.subgroup_arithmetic;

    uint32_t n = 0;
    check(vkEnumeratePhysicalDevices(instance_, &n, nullptr), "vkEnumeratePhysicalDevices");
    std::vector<VkPhysicalDevice> devs(n);
    check(vkEnumeratePhysicalDevices(instance_, &n, devs.data()), "vkEnumeratePhysicalDevices");
    if (size_t(index) >= devs.size()) throw VulkanError("vulkan: the device list changed while opening device " + std::to_string(index));
    phys_ = devs[size_t(index)];

    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(phys_, &props);
    // Shaders index bytes with 32-bit unsigned integers.
    max_buffer_bytes_ = std::min<uint64_t>(props.limits.maxStorageBufferRange, 0xFFFFFFFCull);
    vkGetPhysicalDeviceMemoryProperties(phys_, &mem_props_);
    heap_used_.assign(mem_props_.memoryHeapCount, 0);

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(phys_, &nq, nullptr);
    std::vector<VkQueueFamilyProperties> qf(nq);
    vkGetPhysicalDeviceQueueFamilyProperties(phys_, &nq, qf.data());
    // Prefer a compute-only family (the async compute queue on discrete GPUs).
    int family = -1;
    for (uint32_t i = 0; i < nq; ++i)
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && (family < 0 || !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)))
            family = int(i);
    queue_family_ = uint32_t(family);

    // 8-bit dot products: core in Vulkan 1.3, but kiln's instance asks for 1.1,
    // so through the extension.
    uint32_t n_ext = 0;
    check(vkEnumerateDeviceExtensionProperties(phys_, nullptr, &n_ext, nullptr), "vkEnumerateDeviceExtensionProperties");
    std::vector<VkExtensionProperties> exts(n_ext);
    check(vkEnumerateDeviceExtensionProperties(phys_, nullptr, &n_ext, exts.data()), "vkEnumerateDeviceExtensionProperties");
    bool has_int_dot_ext = false;
    for (const auto& e : exts) has_int_dot_ext |= std::strcmp(e.extensionName, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME) == 0;
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR idp{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    VkPhysicalDeviceShaderIntegerDotProductPropertiesKHR idp_props{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES_KHR};
    if (has_int_dot_ext) {
        VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
        f2.pNext = &idp;
        vkGetPhysicalDeviceFeatures2(phys_, &f2);
        VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
        p2.pNext = &idp_props;
        vkGetPhysicalDeviceProperties2(phys_, &p2);
    }
    if (int_dot == IntDot::Auto) {
        const char* env = std::getenv("KILN_VK_INT_DOT");
        if (env && std::strcmp(env, "0") == 0) int_dot = IntDot::Off;
        else if (env && std::strcmp(env, "1") == 0) int_dot = IntDot::On;
        else if (!idp_props.integerDotProduct4x8BitPackedSignedAccelerated) int_dot = IntDot::Off;
    }
    int_dot_ = int_dot != IntDot::Off && has_int_dot_ext && idp.shaderIntegerDotProduct;
    const char* int_dot_ext = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;

    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = queue_family_;
    qci.queueCount = 1;
    qci.pQueuePriorities = &prio;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    // KILN_VULKAN_COOPMAT=0 keeps the float matmul where cooperative matrices exist (to compare the two).
    const char* cm_env = std::getenv("KILN_VULKAN_COOPMAT");
    CoopmatSupport cm;
    if (!allow_coopmat)
        cm.missing = "turned off by the caller";
    else if (cm_env && std::strcmp(cm_env, "0") == 0)
        cm.missing = "turned off by KILN_VULKAN_COOPMAT=0";
    else
        cm = query_coopmat(instance_, phys_);
    coopmat_ = cm.usable;
    coopmat_missing_ = cm.missing;
    // The extensions and feature chains of both optional paths.
    std::vector<const char*> extensions;
    void* features = nullptr;
    if (int_dot_) {
        idp.pNext = nullptr;
        features = &idp;
        extensions.push_back(int_dot_ext);
    }
    if (coopmat_) {
        extensions.insert(extensions.end(), cm.extensions.begin(), cm.extensions.end());
        features = cm.chain(features);
    }
    dci.enabledExtensionCount = uint32_t(extensions.size());
    dci.ppEnabledExtensionNames = extensions.data();
    dci.pNext = features;
    check(vkCreateDevice(phys_, &dci, nullptr, &device_), "vkCreateDevice");
    try {
        create_objects();
    } catch (...) {  // no destructor runs for a half-made object
        destroy();
        throw;
    }
}

void VulkanDevice::create_objects() {
    vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = queue_family_;
    check(vkCreateCommandPool(device_, &pci, nullptr, &cmd_pool_), "vkCreateCommandPool");
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check(vkCreateFence(device_, &fci, nullptr, &fence_), "vkCreateFence");

    VkDescriptorSetLayoutBinding b[kMaxBindings];
    for (uint32_t i = 0; i < kMaxBindings; ++i)
        b[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
    VkDescriptorSetLayoutCreateInfo lci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    lci.bindingCount = kMaxBindings;
    lci.pBindings = b;
    check(vkCreateDescriptorSetLayout(device_, &lci, nullptr, &set_layout_), "vkCreateDescriptorSetLayout");
    VkPushConstantRange pr{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushBytes};
    VkPipelineLayoutCreateInfo plci{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    plci.setLayoutCount = 1;
    plci.pSetLayouts = &set_layout_;
    plci.pushConstantRangeCount = 1;
    plci.pPushConstantRanges = &pr;
    check(vkCreatePipelineLayout(device_, &plci, nullptr, &pipeline_layout_), "vkCreatePipelineLayout");
    VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kMaxSets * kMaxBindings};
    VkDescriptorPoolCreateInfo dpci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpci.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;  // sets of released buffers go
    dpci.maxSets = kMaxSets;
    dpci.poolSizeCount = 1;
    dpci.pPoolSizes = &ps;
    check(vkCreateDescriptorPool(device_, &dpci, nullptr, &desc_pool_), "vkCreateDescriptorPool");

    // Shaders read the arena in nearly every op (positions, cell masks, rope
    // tables): in device memory through the BAR where the device offers
    // host-visible device memory, not over PCIe from system memory, where each
    // read costs a bus round trip. The host only writes it (sequentially).
    arena_ = make_host_buffer(kArenaBytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                              VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    dummy_ = make_host_buffer(256, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, 0);
    profile_ = ShaderProfile::from_environment(phys_, device_, queue_family_, kDispatchesPerSubmit);
}

VulkanDevice::~VulkanDevice() { destroy(); }

void VulkanDevice::destroy() {
    if (!device_) return;
    try {
        flush();
    } catch (...) {  // a lost device: nothing left to wait for
    }
    vkDeviceWaitIdle(device_);
    if (profile_) {
        std::fputs(profile_->table(name_).c_str(), stderr);
        profile_.reset();  // its query pools go before the device
    }
    free_host_buffer(arena_);
    free_host_buffer(readback_);
    free_host_buffer(dummy_);
    for (auto& [name, p] : pipelines_) vkDestroyPipeline(device_, p.pipeline, nullptr);
    pipelines_.clear();
    // Destroying VK_NULL_HANDLE is a no-op, so objects never made are fine here.
    vkDestroyDescriptorPool(device_, desc_pool_, nullptr);
    vkDestroyPipelineLayout(device_, pipeline_layout_, nullptr);
    vkDestroyDescriptorSetLayout(device_, set_layout_, nullptr);
    vkDestroyFence(device_, fence_, nullptr);
    vkDestroyCommandPool(device_, cmd_pool_, nullptr);
    vkDestroyDevice(device_, nullptr);
    device_ = VK_NULL_HANDLE;
}

uint32_t VulkanDevice::find_memory_type(uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags nice) const {
    int best = -1;
    for (uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i) {
        const VkMemoryPropertyFlags f = mem_props_.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & want) != want) continue;
        if (best < 0 || ((f & nice) == nice && (mem_props_.memoryTypes[best].propertyFlags & nice) != nice)) best = int(i);
    }
    return best < 0 ? UINT32_MAX : uint32_t(best);
}

VulkanDevice::HostBuffer VulkanDevice::make_host_buffer(uint64_t bytes, VkBufferUsageFlags usage, VkMemoryPropertyFlags nice) {
    HostBuffer h;
    h.size = bytes;
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = bytes;
    bci.usage = usage;
    check(vkCreateBuffer(device_, &bci, nullptr, &h.buf), "vkCreateBuffer (host-visible)");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device_, h.buf, &req);
    constexpr VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const uint32_t type = find_memory_type(req.memoryTypeBits, want, nice);
    if (type == UINT32_MAX) {
        vkDestroyBuffer(device_, h.buf, nullptr);
        throw VulkanError("vulkan: device " + name_ + " has no host-visible coherent memory");
    }
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = type;
    VkResult r = vkAllocateMemory(device_, &mai, nullptr, &h.mem);
    // A full preferred heap (a small BAR window): the plain host-visible memory.
    const uint32_t plain = find_memory_type(req.memoryTypeBits, want, 0);
    if (r != VK_SUCCESS && plain != type) {
        mai.memoryTypeIndex = plain;
        r = vkAllocateMemory(device_, &mai, nullptr, &h.mem);
    }
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(device_, h.buf, nullptr);
        throw VulkanError("vulkan: allocating " + mib(bytes) + " of host-visible memory failed: " + result_name(r));
    }
    check(vkBindBufferMemory(device_, h.buf, h.mem, 0), "vkBindBufferMemory");
    void* p = nullptr;
    check(vkMapMemory(device_, h.mem, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
    h.mapped = static_cast<uint8_t*>(p);
    return h;
}

void VulkanDevice::free_host_buffer(HostBuffer& b) {
    if (b.buf) vkDestroyBuffer(device_, b.buf, nullptr);
    if (b.mem) vkFreeMemory(device_, b.mem, nullptr);
    b = {};
}

std::shared_ptr<DeviceBuffer> VulkanDevice::alloc(uint64_t bytes, const char* what) {
    // Whole 16-byte units: shaders read the last partial word of a weight (a
    // Q4_0 row of 18-byte blocks), and a descriptor only covers whole words.
    bytes = std::max<uint64_t>((bytes + 15) / 16 * 16, 16);
    if (bytes > max_buffer_bytes_)
        throw VulkanError("vulkan: " + std::string(what) + " needs one buffer of " + mib(bytes) + " but device " + name_ +
                          " allows at most " + mib(max_buffer_bytes_) + " per buffer");
    auto* b = new DeviceBuffer();
    b->device = this;
    b->size = bytes;
    std::shared_ptr<DeviceBuffer> owned(b, [self = shared_from_this()](DeviceBuffer* d) { self->release(d); });

    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = bytes;
    bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    check(vkCreateBuffer(device_, &bci, nullptr, &b->buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device_, b->buf, &req);
    uint32_t type = find_memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                     VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (type == UINT32_MAX) type = find_memory_type(req.memoryTypeBits, 0, 0);
    if (type == UINT32_MAX) throw VulkanError("vulkan: no memory type fits a storage buffer on " + name_);
    const uint32_t heap = mem_props_.memoryTypes[type].heapIndex;
    const uint64_t heap_size = mem_props_.memoryHeaps[heap].size;
    if (heap_used_[heap] + req.size > uint64_t(double(heap_size) * kHeapShare))
        throw VulkanError("vulkan: " + std::string(what) + " needs " + mib(req.size) + " more on " + name_ + ", whose memory heap " +
                          std::to_string(heap) + " has " + mib(heap_size) + " (kiln uses " + mib(heap_used_[heap]) +
                          " of it already); offload fewer layers with -ngl or use a smaller context");
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = type;
    const VkResult r = vkAllocateMemory(device_, &mai, nullptr, &b->mem);
    if (r != VK_SUCCESS)
        throw VulkanError("vulkan: allocating " + mib(req.size) + " for " + what + " on " + name_ + " failed (" + result_name(r) +
                          "); offload fewer layers with -ngl or use a smaller context");
    b->heap = heap;
    heap_used_[heap] += req.size;
    check(vkBindBufferMemory(device_, b->buf, b->mem, 0), "vkBindBufferMemory");
    if (mem_props_.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT &&
        mem_props_.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) {
        void* p = nullptr;
        if (vkMapMemory(device_, b->mem, 0, VK_WHOLE_SIZE, 0, &p) == VK_SUCCESS) b->mapped = static_cast<uint8_t*>(p);
    }
    const uint64_t page = 4096;
    b->reserved = (bytes + page - 1) / page * page;
    void* addr = mmap(nullptr, b->reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (addr == MAP_FAILED) throw VulkanError("vulkan: reserving address space for " + std::string(what) + " failed");
    b->address = addr;
    by_address_[reinterpret_cast<uintptr_t>(addr)] = b;
    return owned;
}

void VulkanDevice::release(DeviceBuffer* b) {
    // Work recorded so far may still use the buffer.
    try {
        flush();
    } catch (...) {
    }
    for (auto it = sets_.begin(); it != sets_.end();) {
        if (std::find(it->first.begin(), it->first.end(), b->buf) != it->first.end()) {
            vkFreeDescriptorSets(device_, desc_pool_, 1, &it->second);
            it = sets_.erase(it);
        } else {
            ++it;
        }
    }
    if (b->address) {
        by_address_.erase(reinterpret_cast<uintptr_t>(b->address));
        munmap(b->address, b->reserved);
    }
    if (b->buf) vkDestroyBuffer(device_, b->buf, nullptr);
    if (b->mem) {
        vkFreeMemory(device_, b->mem, nullptr);
        last_write_.erase(b->buf);
        heap_used_[b->heap] -= std::min(heap_used_[b->heap], b->size);
    }
    delete b;
}

const DeviceBuffer* VulkanDevice::resolve(const void* p, uint64_t* offset) const {
    const auto a = reinterpret_cast<uintptr_t>(p);
    auto it = by_address_.upper_bound(a);
    if (it == by_address_.begin()) return nullptr;
    --it;
    const DeviceBuffer* b = it->second;
    if (a - it->first >= b->size) return nullptr;
    *offset = a - it->first;
    return b;
}

void VulkanDevice::upload_now(const DeviceBuffer& dst, uint64_t offset, const void* src, uint64_t bytes) {
    if (dst.mapped) {
        flush();  // earlier recorded work may still read or write this range
        std::memcpy(dst.mapped + offset, src, bytes);
        return;
    }
    // Through the arena in slices.
    const auto* s = static_cast<const uint8_t*>(src);
    while (bytes > 0) {
        const uint64_t n = std::min<uint64_t>(bytes, kArenaBytes / 2);
        reserve((n + 3) / 4, 0);
        uint32_t off = 0;
        std::memcpy(arena((n + 3) / 4, &off), s, n);
        const VkBufferCopy region{uint64_t(off) * 4, offset, n};
        copy(arena_.buf, dst.buf, &region, 1);
        s += n;
        offset += n;
        bytes -= n;
    }
    flush();
}

void VulkanDevice::reserve(uint64_t words, uint32_t sets) {
    if (words * 4 > kArenaBytes) throw VulkanError("vulkan: an op needs " + mib(words * 4) + " of host inputs, more than the arena holds");
    if ((arena_used_ + words) * 4 > kArenaBytes || sets_.size() + sets > kMaxSets) flush();
    if (sets_.size() + sets > kMaxSets) {  // recorded work is done: the sets can go
        check(vkResetDescriptorPool(device_, desc_pool_, 0), "vkResetDescriptorPool");
        sets_.clear();
    }
}

uint32_t* VulkanDevice::arena(uint64_t words, uint32_t* word_offset) {
    // 16-byte aligned slices.
    arena_used_ = (arena_used_ + 3) / 4 * 4;
    *word_offset = uint32_t(arena_used_);
    uint32_t* p = reinterpret_cast<uint32_t*>(arena_.mapped) + arena_used_;
    arena_used_ += words;
    return p;
}

VkBuffer VulkanDevice::arena_buffer() const { return arena_.buf; }

const VulkanDevice::Pipeline& VulkanDevice::pipeline(const char* shader) {
    auto it = pipelines_.find(shader);
    if (it != pipelines_.end()) return it->second;
    const SpirvModule* mod = nullptr;
    for (const SpirvModule& m : spirv_modules())
        if (std::strcmp(m.name, shader) == 0) mod = &m;
    if (!mod) throw VulkanError(std::string("vulkan: no embedded shader named ") + shader + " (a kiln build problem)");
    VkShaderModuleCreateInfo smci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smci.codeSize = mod->n_words * 4;
    smci.pCode = mod->words;
    VkShaderModule sm;
    check(vkCreateShaderModule(device_, &smci, nullptr, &sm), "vkCreateShaderModule");
    VkComputePipelineCreateInfo cpci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    cpci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpci.stage.module = sm;
    cpci.stage.pName = "main";
    cpci.layout = pipeline_layout_;
    VkPipeline p;
    const VkResult r = vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &cpci, nullptr, &p);
    vkDestroyShaderModule(device_, sm, nullptr);
    check(r, (std::string("creating the pipeline of shader ") + shader).c_str());
    return pipelines_.emplace(shader, Pipeline{p, spirv_written_bindings(mod->words, mod->n_words)}).first->second;
}

void VulkanDevice::begin_if_needed() {
    if (recording_) return;
    if (n_cmd_used_ == cmds_.size()) {
        VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
        cai.commandPool = cmd_pool_;
        cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        cai.commandBufferCount = 1;
        VkCommandBuffer c;
        check(vkAllocateCommandBuffers(device_, &cai, &c), "vkAllocateCommandBuffers");
        cmds_.push_back(c);
    }
    cmd_ = cmds_[n_cmd_used_++];
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check(vkBeginCommandBuffer(cmd_, &bi), "vkBeginCommandBuffer");
    recording_ = true;
    cmd_dispatches_ = 0;
    if (profile_) profile_->begin(cmd_, n_cmd_used_ - 1);
}

void VulkanDevice::submit_recorded(VkFence fence) {
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    if (recording_) {
        recording_ = false;
        check(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
        si.commandBufferCount = 1;
        si.pCommandBuffers = &cmd_;
    }
    check(vkQueueSubmit(queue_, 1, &si, fence), "vkQueueSubmit");
    submitted_unwaited_ = true;
}

// One barrier orders everything recorded before it (in this command buffer and
// in those submitted earlier to the queue) before everything after it.
void VulkanDevice::barrier() {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT;
    const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cmd_, stages, stages | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
    written_since_barrier_.clear();
    read_since_barrier_.clear();
}

void VulkanDevice::barrier_if_hazard(const BindingSet& b, uint32_t written) {
    auto in = [](const std::vector<VkBuffer>& v, VkBuffer x) { return std::find(v.begin(), v.end(), x) != v.end(); };
    bool hazard = false;
    for (uint32_t i = 0; i < kMaxBindings && !hazard; ++i)
        hazard = in(written_since_barrier_, b[i]) || ((written >> i) & 1u && in(read_since_barrier_, b[i]));
    if (hazard) barrier();
    for (uint32_t i = 0; i < kMaxBindings; ++i) {
        if (b[i] == dummy_.buf) continue;
        if ((written >> i) & 1u) {
            written_since_barrier_.push_back(b[i]);
            mark_written(b[i]);
        } else {
            read_since_barrier_.push_back(b[i]);
        }
    }
}

size_t VulkanDevice::BindingSetHash::operator()(const BindingSet& b) const {
    size_t h = 0;
    for (VkBuffer x : b) h = h * 0x9E3779B97F4A7C15ull + std::hash<VkBuffer>()(x);
    return h;
}

VkDescriptorSet VulkanDevice::descriptor_set(const BindingSet& b) {
    auto it = sets_.find(b);
    if (it != sets_.end()) return it->second;
    if (sets_.size() >= kMaxSets) reserve(0, 1);  // frees them all once the recorded work is done
    VkDescriptorSetAllocateInfo dsai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    dsai.descriptorPool = desc_pool_;
    dsai.descriptorSetCount = 1;
    dsai.pSetLayouts = &set_layout_;
    VkDescriptorSet set;
    check(vkAllocateDescriptorSets(device_, &dsai, &set), "vkAllocateDescriptorSets");
    VkDescriptorBufferInfo info[kMaxBindings];
    VkWriteDescriptorSet w[kMaxBindings];
    for (uint32_t i = 0; i < kMaxBindings; ++i) {
        info[i] = {b[i], 0, VK_WHOLE_SIZE};
        w[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        w[i].dstSet = set;
        w[i].dstBinding = i;
        w[i].descriptorCount = 1;
        w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        w[i].pBufferInfo = &info[i];
    }
    vkUpdateDescriptorSets(device_, kMaxBindings, w, 0, nullptr);
    sets_.emplace(b, set);
    return set;
}

void VulkanDevice::dispatch(const char* shader, const VkBuffer (&bindings)[kMaxBindings], const void* push,
                            uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (gx == 0 || gy == 0 || gz == 0) return;
    const Pipeline& p = pipeline(shader);
    BindingSet b;
    for (uint32_t i = 0; i < kMaxBindings; ++i) b[i] = bindings[i] ? bindings[i] : dummy_.buf;
    const VkDescriptorSet set = descriptor_set(b);
    if (recording_ && cmd_dispatches_ >= kDispatchesPerSubmit) submit_recorded(VK_NULL_HANDLE);
    begin_if_needed();
    barrier_if_hazard(b, p.written);
    vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
    vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_layout_, 0, 1, &set, 0, nullptr);
    vkCmdPushConstants(cmd_, pipeline_layout_, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    if (profile_) profile_->start(cmd_, n_cmd_used_ - 1);
    vkCmdDispatch(cmd_, gx, gy, gz);
    if (profile_) profile_->finish(cmd_, n_cmd_used_ - 1, shader);
    ++cmd_dispatches_;
}

// Transfers are rare (uploads, read-back): a barrier on each side.
void VulkanDevice::copy(VkBuffer src, VkBuffer dst, const VkBufferCopy* regions, uint32_t n) {
    if (n == 0) return;
    begin_if_needed();
    barrier();
    vkCmdCopyBuffer(cmd_, src, dst, n, regions);
    barrier();
    mark_written(dst);
}

void VulkanDevice::fill_zero(VkBuffer dst, uint64_t offset, uint64_t bytes) {
    begin_if_needed();
    barrier();
    vkCmdFillBuffer(cmd_, dst, offset, bytes / 4 * 4, 0);
    barrier();
    mark_written(dst);
}

const uint8_t* VulkanDevice::read_back(VkBuffer src, const VkBufferCopy* regions, uint32_t n, uint64_t total_bytes) {
    if (readback_.size < total_bytes) {
        flush();
        free_host_buffer(readback_);
        readback_ = make_host_buffer(std::max<uint64_t>(total_bytes, 1u << 20), VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                     VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    }
    copy(src, readback_.buf, regions, n);
    flush();
    return readback_.mapped;
}

uint64_t VulkanDevice::last_write(VkBuffer b) const {
    const auto it = last_write_.find(b);
    return it == last_write_.end() ? UINT64_MAX : it->second;
}

void VulkanDevice::flush() {
    if (recording_ || submitted_unwaited_) {
        // The fence of the last submit also covers every earlier one on the queue.
        submit_recorded(fence_);
        const VkResult r = vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX);
        check(vkResetFences(device_, 1, &fence_), "vkResetFences");
        check(r, "waiting for the GPU");
        submitted_unwaited_ = false;
        if (profile_) profile_->collect(n_cmd_used_);  // before the command buffers and their queries are reused
        check(vkResetCommandPool(device_, cmd_pool_, 0), "vkResetCommandPool");
        n_cmd_used_ = 0;
    }
    // What was written stays in written_since_barrier_: the next command
    // buffer's first reader still needs a barrier to see it.
    arena_used_ = 0;
}

}  // namespace kiln::vk
