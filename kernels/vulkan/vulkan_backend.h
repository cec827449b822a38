#pragma once
// The Vulkan backend: weights copied once into device-local buffers, activations
// in device buffers, every op a compute shader (kernels/vulkan/*.comp) recorded
// into one command buffer that is submitted when results are read.
//
// The KV cache: when the KvView's K/V pointers are not device addresses (the
// engine's KvCache holds host memory), the backend keeps a device copy of the
// cache per KvView and writes and reads only that copy; the host copy is then
// unused. Cell bookkeeping (positions, sequence sets) is read from the host
// view at every attention call.
#include <map>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "kernels/vulkan/attention_cells.h"
#include "kernels/vulkan/vulkan_device.h"

namespace kiln::vk {

struct VulkanOptions {
    int device = 0;               // index in vulkan_list_devices()
    bool allow_subgroups = true;  // false: shared-memory reductions only
    bool allow_coopmat = true;    // false: the float tiled matmul even where cooperative matrices exist
    IntDot int_dot = IntDot::Auto;  // 8-bit dot products in matrix-vector products (vulkan_device.h)
};

class VulkanBackend final : public Backend {
public:
    explicit VulkanBackend(const VulkanOptions& options = {});
    ~VulkanBackend() override;

    const char* name() const override { return "vulkan"; }
    const VulkanDevice& device() const { return *dev_; }

    Weight upload_weight(const TensorView& host) override;
    ActBuffer alloc_act(int64_t n_rows, int64_t n_cols) override;
    void write_act(Act dst, const float* src) override;
    void read_act(const Act& src, float* dst) override;
    void synchronize() override;

    void get_rows(const Weight& table, std::span<const int32_t> ids, Act out) override;
    void matmul(const Weight& w, const Act& x, Act y) override;
    void rms_norm(const Act& x, const Weight& weight, float eps, Act out) override;
    void add_rms_norm(Act x, const Act& b, const Weight& weight, float eps, Act out) override;
    void rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) override;
    void kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells) override;
    void rope_kv_store(Act q, Act k, const Act& v, int n_head, int head_dim, std::span<const int32_t> pos,
                       const RopeParams& p, const KvView& kv, int layer, std::span<const int32_t> cells) override;
    void attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                   std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) override;
    void swiglu(const Act& gate, const Act& up, Act out) override;
    void add(const Act& a, const Act& b, Act out) override;
    void softmax(Act x) override;
    void copy_rows(const Act& src, std::span<const int32_t> rows, Act out) override;

private:
    // A resolved activation: its buffer and offsets in floats.
    struct Bound {
        VkBuffer buf;
        uint32_t off;     // floats from the buffer start to row 0
        uint32_t stride;  // floats between rows
    };
    Bound bind(const Act& a, const char* op) const;
    VkBuffer bind_weight(const Weight& w, const char* op) const;
    struct KvLayerBuffers {
        VkBuffer k, v;
    };
    KvLayerBuffers bind_kv(const KvView& kv, int layer, const char* op);
    // x (at most 4 tokens) as q8 blocks in q8_ for the integer-dot matvec; the
    // words per token go to *q_stride. Reuses the q8 copy while x is unchanged
    // since it was made (Q, K and V, or gate and up, read one input; rms_norm,
    // add_rms_norm and swiglu write the copy of their output themselves).
    VkBuffer quantize_q8(const Act& x, const Bound& xb, uint32_t* q_stride);
    // Whether an op writing `out` also writes its q8 copy: decode rows that a
    // matvec may read next, on the integer-dot path.
    bool q8_on_output(const Act& out) const;
    // Words per token of a q8 copy of n_cols columns, and q8_ grown to hold one
    // of up to 4 tokens (forgetting what it held when it grows).
    static uint32_t q8_stride(int64_t n_cols);
    VkBuffer q8_reserve(int64_t n_cols);
    // q8_ now holds x as the last recorded command left it.
    void q8_mark(const Act& x, const Bound& xb);

    std::shared_ptr<VulkanDevice> dev_;
    std::vector<std::shared_ptr<DeviceBuffer>> weights_;
    // Device copies of host KV caches, keyed by the host K pointer of layer 0.
    struct KvMirror {
        int64_t n_cells = 0, n_kv_dim = 0;
        size_t n_layer = 0;
        GgmlType type = GgmlType::F16;
        std::vector<std::shared_ptr<DeviceBuffer>> k, v;
        uint64_t last_use = 0;
    };
    std::map<const void*, KvMirror> kv_mirrors_;
    uint64_t kv_clock_ = 0;
    std::vector<float> rope_cs_;  // host scratch for the rope table
    // x rounded to f16 in x16_ for the cooperative-matrix matmul: rows of
    // stride16 uvec4s, zero-padded (to_f16.comp). Reuses the last conversion
    // while x is unchanged (Q, K and V, or gate and up, read one input).
    VkBuffer to_f16(const Act& x, const Bound& xb, uint32_t stride16);

    // The activations a converted copy (q8 blocks, f16 rows) was made from, and when:
    // the copy serves while that buffer has not been written since.
    struct ConvertedFrom {
        VkBuffer buf = VK_NULL_HANDLE;
        uint32_t off = 0, stride = 0;
        int64_t n_rows = 0, n_cols = 0;
        uint64_t at = 0;  // VulkanDevice::write_clock() at the conversion
        // Whether the copy is of x as bound at xb, whose buffer was last written at last_write.
        bool holds(const Act& x, const Bound& xb, uint64_t last_write) const {
            return buf == xb.buf && off == xb.off && stride == xb.stride && n_rows == x.n_rows && n_cols == x.n_cols &&
                   last_write < at;
        }
    };
    // Split attention's per-split partial rows (attention_decode.glsl),
    // grown to hold `floats`.
    VkBuffer attention_partials(uint64_t floats);
    std::shared_ptr<DeviceBuffer> attn_part_;
    AttentionCellRanges attn_ranges_;

    std::shared_ptr<DeviceBuffer> q8_;
    ConvertedFrom q8_source_;
    std::shared_ptr<DeviceBuffer> x16_;
    ConvertedFrom f16_source_;
};

}  // namespace kiln::vk
