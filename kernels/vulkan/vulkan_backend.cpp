#include "kernels/vulkan/vulkan_backend.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>

#include "formats/quant_traits.h"
#include "kernels/cpu/ops_ref.h"

namespace kiln::vk {

namespace {
void require(bool ok, const char* op, const std::string& what) {
    if (!ok) throw BackendError(std::string("vulkan backend: ") + op + ": " + what);
}

std::string shape(const Act& a) {
    // Appended piece by piece: GCC 12's -Wrestrict misfires on "[" + to_string(...).
    std::string s = "[";
    s += std::to_string(a.n_rows);
    s += ", ";
    s += std::to_string(a.n_cols);
    s += "]";
    return s;
}

// Weight types with a dequantizing shader variant (cmake/vulkan.cmake's list).
bool has_shader(GgmlType t) {
    switch (t) {
        case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
        case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
        case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
            return true;
        default:
            return false;
    }
}

std::string variant(const char* shader, GgmlType t, bool sg, bool int_dot = false) {
    std::string n = std::string(shader) + "_" + quant_traits(t).name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (int_dot) n += "_dp";
    return sg ? n + "_sg" : n;
}

// Weight types with an integer-dot matvec (matvec.comp's kiln:int-dot-variant list).
bool has_int_dot_matvec(GgmlType t) {
    return t == GgmlType::Q4_0 || t == GgmlType::Q4_1 || t == GgmlType::Q5_0 || t == GgmlType::Q5_1 || t == GgmlType::Q8_0;
}

uint32_t u32(int64_t v) { return uint32_t(v); }

constexpr int64_t kMatvecMaxTokens = 4, kMatvecRows = 2;  // NT and NROWS in matvec.comp
// Batches from this many tokens take the cooperative-matrix attention (64 queries a workgroup).
constexpr uint64_t kAttentionCmMinTokens = 16;

// Attention outside the cooperative-matrix prompt shader: attention_decode.glsl
// for any batch. Its cells split over workgroups only when the (head, token)
// workgroups leave the GPU idle: at most ~kAttentionTargetGroups workgroups,
// each split at least kAttentionSplitMinChunks chunks of kAttentionChunk cells
// (shorter splits would cost the merge dispatch more than they save), and at
// most kAttentionMaxSplits (the merge reads every split's partial row). So a
// batch of n_groups >= kAttentionTargetGroups workgroups never splits, and the
// partial rows (n_groups x n_split x (head_dim + 2) floats) stay under
// 2 x kAttentionTargetGroups x 258 floats (~1 MiB) whatever the batch.
constexpr uint64_t kAttentionChunk = 128, kAttentionTargetGroups = 512, kAttentionSplitMinChunks = 2,
                   kAttentionMaxSplits = 64;

// Cells per split for n_scan cells and n_groups (head, token) workgroups; the
// split count is then ceil(n_scan / cells), at least 1.
uint64_t attention_split_cells(uint64_t n_scan, uint64_t n_groups) {
    const uint64_t chunks = (n_scan + kAttentionChunk - 1) / kAttentionChunk;
    const uint64_t want = std::min({chunks / kAttentionSplitMinChunks, (kAttentionTargetGroups + n_groups - 1) / n_groups,
                                    kAttentionMaxSplits});
    const uint64_t n_split = std::max<uint64_t>(want, 1);
    return std::max<uint64_t>((chunks + n_split - 1) / n_split, 1) * kAttentionChunk;
}

// Per token of `pos`, the n_rot / 2 cosines then the n_rot / 2 sines that rope.comp
// and rope_kv_store.comp read (the CPU backend's angles, bit for bit).
void rope_table(const RopeParams& p, std::span<const int32_t> pos, float* cs) {
    const ref::RopeCorrDims corr = ref::rope_yarn_corr_dims(p);
    for (size_t t = 0; t < pos.size(); ++t)
        ref::rope_cos_sin(p, corr, pos[t], cs + t * size_t(p.n_rot), cs + t * size_t(p.n_rot) + size_t(p.n_rot / 2));
}

// Grid of workgroups covering n items in groups of `per`, split over x and y
// because one dimension holds at most 65535 groups.
void split_groups(uint64_t n, uint32_t* gx, uint32_t* gy) {
    *gx = uint32_t(std::min<uint64_t>(n, 65535));
    *gy = uint32_t((n + *gx - 1) / *gx);
}
}  // namespace

VulkanBackend::VulkanBackend(const VulkanOptions& options)
    : dev_(std::make_shared<VulkanDevice>(options.device, options.allow_subgroups, options.allow_coopmat,
                                          options.int_dot)) {}

VulkanBackend::~VulkanBackend() {
    try {
        dev_->flush();
    } catch (...) {
    }
}

VulkanBackend::Bound VulkanBackend::bind(const Act& a, const char* op) const {
    uint64_t off = 0;
    const DeviceBuffer* b = dev_->resolve(a.data, &off);
    require(b != nullptr, op, "an activation is not in this backend's memory (allocate it with alloc_act)");
    require(a.n_rows <= 1 || off + uint64_t((a.n_rows - 1) * a.stride + a.n_cols) * 4 <= b->size, op,
            "activation " + shape(a) + " runs past its buffer");
    return {b->buf, uint32_t(off / 4), uint32_t(a.stride)};
}

VkBuffer VulkanBackend::bind_weight(const Weight& w, const char* op) const {
    uint64_t off = 0;
    const DeviceBuffer* b = dev_->resolve(w.device, &off);
    require(b != nullptr && off == 0, op, "the weight was not uploaded to this backend");
    return b->buf;
}

Weight VulkanBackend::upload_weight(const TensorView& host) {
    require(has_shader(host.type), "upload_weight",
            std::string("no Vulkan shader for weight type ") + quant_traits(host.type).name);
    const uint64_t bytes = uint64_t(host.nb[1]) * uint64_t(host.n_rows());
    auto buf = dev_->alloc(bytes, "a weight");
    dev_->upload_now(*buf, 0, host.data, bytes);
    Weight w{host, buf->address};
    weights_.push_back(std::move(buf));
    return w;
}

ActBuffer VulkanBackend::alloc_act(int64_t n_rows, int64_t n_cols) {
    require(n_rows > 0 && n_cols > 0, "alloc_act", "shape must be positive");
    const int64_t stride = (n_cols + 15) / 16 * 16;
    auto buf = dev_->alloc(uint64_t(n_rows) * uint64_t(stride) * 4, "activations");
    dev_->fill_zero(buf->buf, 0, buf->size);
    void* addr = buf->address;
    return ActBuffer(Act{static_cast<float*>(addr), n_rows, n_cols, stride}, std::shared_ptr<void>(buf, buf.get()));
}

void VulkanBackend::write_act(Act dst, const float* src) {
    const Bound d = bind(dst, "write_act");
    const uint64_t row_words = uint64_t(dst.n_cols);
    const int64_t rows_per = std::max<int64_t>(1, int64_t((8ull << 20) / 4 / row_words));
    std::vector<VkBufferCopy> regions;
    for (int64_t r0 = 0; r0 < dst.n_rows; r0 += rows_per) {
        const int64_t n = std::min(rows_per, dst.n_rows - r0);
        dev_->reserve(uint64_t(n) * row_words, 0);
        uint32_t off = 0;
        uint32_t* a = dev_->arena(uint64_t(n) * row_words, &off);
        std::memcpy(a, src + r0 * dst.n_cols, size_t(n) * row_words * 4);
        regions.clear();
        for (int64_t r = 0; r < n; ++r)
            regions.push_back({(uint64_t(off) + uint64_t(r) * row_words) * 4, (uint64_t(d.off) + uint64_t(r0 + r) * d.stride) * 4,
                               row_words * 4});
        dev_->copy(dev_->arena_buffer(), d.buf, regions.data(), uint32_t(regions.size()));
    }
}

void VulkanBackend::read_act(const Act& src, float* dst) {
    const Bound s = bind(src, "read_act");
    std::vector<VkBufferCopy> regions;
    const uint64_t row_bytes = uint64_t(src.n_cols) * 4;
    for (int64_t r = 0; r < src.n_rows; ++r)
        regions.push_back({(uint64_t(s.off) + uint64_t(r) * s.stride) * 4, uint64_t(r) * row_bytes, row_bytes});
    const uint8_t* p = dev_->read_back(s.buf, regions.data(), uint32_t(regions.size()), row_bytes * uint64_t(src.n_rows));
    std::memcpy(dst, p, row_bytes * uint64_t(src.n_rows));
}

void VulkanBackend::synchronize() { dev_->flush(); }

void VulkanBackend::get_rows(const Weight& table, std::span<const int32_t> ids, Act out) {
    const TensorView& w = table.host;
    require(out.n_cols == w.ne[0] && out.n_rows == int64_t(ids.size()), "get_rows",
            "out " + shape(out) + " does not match " + std::to_string(ids.size()) + " rows of " + std::to_string(w.ne[0]));
    for (int32_t id : ids)
        require(id >= 0 && id < w.n_rows(), "get_rows", "row " + std::to_string(id) + " is outside the table");
    if (ids.empty()) return;
    const Bound o = bind(out, "get_rows");
    dev_->reserve(ids.size(), 1);
    uint32_t ids_off = 0;
    std::memcpy(dev_->arena(ids.size(), &ids_off), ids.data(), ids.size() * 4);
    const uint32_t pc[] = {u32(w.ne[0]), u32(int64_t(w.nb[1])), ids_off, o.off, o.stride};
    const VkBuffer b[kMaxBindings] = {bind_weight(table, "get_rows"), dev_->arena_buffer(), o.buf};
    const uint32_t gx = uint32_t(std::min<int64_t>((w.ne[0] + 127) / 128, 64));
    dev_->dispatch(variant("get_rows", w.type, false).c_str(), b, pc, sizeof pc, gx, u32(int64_t(ids.size())), 1);
}

void VulkanBackend::matmul(const Weight& w, const Act& x, Act y) {
    require(x.n_cols == w.n_in() && y.n_cols == w.n_out() && x.n_rows == y.n_rows, "matmul",
            "x " + shape(x) + " and y " + shape(y) + " do not fit weight [" + std::to_string(w.n_out()) + ", " +
                std::to_string(w.n_in()) + "]");
    const Bound xb = bind(x, "matmul"), yb = bind(y, "matmul");
    uint32_t pc[] = {u32(w.n_in()), u32(w.n_out()), u32(x.n_rows), u32(int64_t(w.host.nb[1])),
                     xb.off, xb.stride, yb.off, yb.stride, 0};
    VkBuffer b[kMaxBindings] = {bind_weight(w, "matmul"), xb.buf, yb.buf};
    uint32_t gx, gy;
    // A few tokens (decode): matvec.comp, which reads x as vec4s.
    if (x.n_rows <= kMatvecMaxTokens && xb.off % 4 == 0 && xb.stride % 4 == 0) {
        const bool int_dot = dev_->int_dot() && has_int_dot_matvec(w.type()) && w.n_in() % 32 == 0;
        if (int_dot) b[3] = quantize_q8(x, xb, &pc[8]);
        dev_->reserve(0, 1);
        split_groups(uint64_t((w.n_out() + kMatvecRows - 1) / kMatvecRows), &gx, &gy);
        dev_->dispatch(variant("matvec", w.type(), dev_->subgroups(), int_dot).c_str(), b, pc, sizeof pc, gx, gy, 1);
        return;
    }
    if (dev_->coopmat()) {
        // Cooperative matrices over activations rounded to f16 once (matmul_cm.glsl):
        // tiles of 128 rows x 128 tokens, whole ones by matmul_cm, the rows and the
        // tokens past the last whole tile by matmul_cm_cut (bounds checked, slower);
        // batches of up to 64 tokens in tiles of 128 x 64 (matmul_cm64, bounds checked).
        const uint32_t stride16 = u32((w.n_in() + 63) / 64 * 8);  // BK = 64 halves = 8 uvec4s
        const VkBuffer cb[kMaxBindings] = {b[0], to_f16(x, xb, stride16), yb.buf};
        const auto tiles = [&](const char* shader, int64_t bn, int64_t o_first, int64_t o_end, int64_t t_first,
                               int64_t t_end) {
            if (o_end <= o_first || t_end <= t_first) return;
            const uint32_t cpc[] = {pc[0], pc[1], pc[2], pc[3], stride16, yb.off, yb.stride, u32(o_first), u32(t_first)};
            split_groups(uint64_t((o_end - o_first + 127) / 128), &gx, &gy);
            dev_->reserve(0, 1);
            dev_->dispatch(variant(shader, w.type(), false).c_str(), cb, cpc, sizeof cpc, gx, gy,
                           u32((t_end - t_first + bn - 1) / bn));
        };
        const int64_t n_out = w.n_out(), n_tok = x.n_rows;
        if (n_tok <= 64) {
            tiles("matmul_cm64", 64, 0, n_out, 0, n_tok);
            return;
        }
        // Tiles of 64 tokens for every batch (twice the workgroups): pp512 5021 -> 4195 (H200, 7B Q4_0).
        const int64_t whole_o = n_out / 128 * 128, whole_t = n_tok / 128 * 128;
        tiles("matmul_cm", 128, 0, whole_o, 0, whole_t);
        tiles("matmul_cm_cut", 128, whole_o, n_out, 0, n_tok);
        tiles("matmul_cm_cut", 128, 0, whole_o, whole_t, n_tok);
        return;
    }
    // Tiles of 64 output rows x 64 tokens (BM, BN in matmul_tiles.glsl); the shader reads
    // the first 8 push constants.
    constexpr int64_t kRows = 64, kTokens = 64;
    split_groups(uint64_t((w.n_out() + kRows - 1) / kRows), &gx, &gy);
    dev_->reserve(0, 1);
    dev_->dispatch(variant("matmul", w.type(), false).c_str(), b, pc, sizeof pc, gx, gy,
                   u32((x.n_rows + kTokens - 1) / kTokens));
}

VkBuffer VulkanBackend::to_f16(const Act& x, const Bound& xb, uint32_t stride16) {
    const uint64_t bytes = uint64_t(x.n_rows) * stride16 * 16;
    ConvertedFrom& s = f16_source_;
    if (!x16_ || x16_->size < bytes) {
        x16_ = dev_->alloc(bytes, "f16 activations");
        s = {};
    }
    if (s.holds(x, xb, dev_->last_write(xb.buf))) return x16_->buf;
    const uint32_t pc[] = {u32(x.n_cols), xb.off, xb.stride, stride16};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, xb.buf, VK_NULL_HANDLE, x16_->buf};
    dev_->reserve(0, 1);
    dev_->dispatch("to_f16", b, pc, sizeof pc, (stride16 * 4 + 255) / 256, u32(x.n_rows), 1);
    s = {xb.buf, xb.off, xb.stride, x.n_rows, x.n_cols, dev_->write_clock()};
    return x16_->buf;
}

uint32_t VulkanBackend::q8_stride(int64_t n_cols) {
    // Per token: n_cols / 4 words of int8, then a (d, d * sum) float pair per block.
    return u32((n_cols / 4 + n_cols / 16 + 3) / 4 * 4);
}

VkBuffer VulkanBackend::q8_reserve(int64_t n_cols) {
    const uint64_t bytes = uint64_t(q8_stride(n_cols)) * 4 * kMatvecMaxTokens;
    if (!q8_ || q8_->size < bytes) {
        q8_ = dev_->alloc(bytes, "quantized activations");
        q8_source_ = {};
    }
    return q8_->buf;
}

void VulkanBackend::q8_mark(const Act& x, const Bound& xb) {
    // Valid until the next write of x's buffer, whose clock will be past this one.
    q8_source_ = {xb.buf, xb.off, xb.stride, x.n_rows, x.n_cols, dev_->write_clock() + 1};
}

bool VulkanBackend::q8_on_output(const Act& out) const {
    return dev_->int_dot() && out.n_rows <= kMatvecMaxTokens && out.n_cols % 32 == 0;
}

VkBuffer VulkanBackend::quantize_q8(const Act& x, const Bound& xb, uint32_t* q_stride) {
    *q_stride = q8_stride(x.n_cols);
    const VkBuffer q8 = q8_reserve(x.n_cols);
    if (q8_source_.holds(x, xb, dev_->last_write(xb.buf))) return q8;
    const uint32_t pc[] = {u32(x.n_cols), u32(x.n_rows), xb.off, xb.stride, *q_stride};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, xb.buf, VK_NULL_HANDLE, q8};
    dev_->reserve(0, 1);
    dev_->dispatch("quantize_q8", b, pc, sizeof pc, u32((x.n_cols / 32 + 63) / 64), u32(x.n_rows), 1);
    q8_mark(x, xb);
    return q8;
}

void VulkanBackend::rms_norm(const Act& x, const Weight& weight, float eps, Act out) {
    require(weight.type() == GgmlType::F32 && weight.host.ne[0] == x.n_cols && out.n_cols == x.n_cols &&
                out.n_rows == x.n_rows, "rms_norm", "x " + shape(x) + ", out " + shape(out) + " and an F32 weight of " +
                std::to_string(weight.host.ne[0]) + " do not match");
    if (x.n_rows == 0) return;
    const Bound xb = bind(x, "rms_norm"), ob = bind(out, "rms_norm");
    const bool q8 = q8_on_output(out);
    struct {
        uint32_t n_cols, x_off, x_stride, o_off, o_stride;
        float eps;
        uint32_t q_stride;
    } pc{u32(x.n_cols), xb.off, xb.stride, ob.off, ob.stride, eps, q8 ? q8_stride(x.n_cols) : 0};
    const VkBuffer b[kMaxBindings] = {bind_weight(weight, "rms_norm"), xb.buf, ob.buf,
                                      q8 ? q8_reserve(x.n_cols) : VK_NULL_HANDLE};
    dev_->reserve(0, 1);
    dev_->dispatch(dev_->subgroups() ? "rms_norm_sg" : "rms_norm", b, &pc, sizeof pc, u32(x.n_rows), 1, 1);
    if (q8) q8_mark(out, ob);
}

void VulkanBackend::add_rms_norm(Act x, const Act& b, const Weight& weight, float eps, Act out) {
    require(b.n_rows == x.n_rows && b.n_cols == x.n_cols && weight.type() == GgmlType::F32 &&
                weight.host.ne[0] == x.n_cols && out.n_cols == x.n_cols && out.n_rows == x.n_rows,
            "add_rms_norm", "x " + shape(x) + ", b " + shape(b) + ", out " + shape(out) + " and an F32 weight of " +
                                std::to_string(weight.host.ne[0]) + " do not match");
    if (x.n_rows == 0) return;
    const Bound xb = bind(x, "add_rms_norm"), bb = bind(b, "add_rms_norm"), ob = bind(out, "add_rms_norm");
    // The one pass reads x back after other invocations may have written out:
    // an out sharing a buffer with x or b takes the two dispatches.
    if (ob.buf == xb.buf || ob.buf == bb.buf) {
        Backend::add_rms_norm(x, b, weight, eps, out);
        return;
    }
    const bool q8 = q8_on_output(out);
    struct {
        uint32_t n_cols, x_off, x_stride, o_off, o_stride;
        float eps;
        uint32_t q_stride, b_off, b_stride;
    } pc{u32(x.n_cols), xb.off, xb.stride, ob.off, ob.stride, eps, q8 ? q8_stride(x.n_cols) : 0, bb.off, bb.stride};
    const VkBuffer bufs[kMaxBindings] = {bind_weight(weight, "add_rms_norm"), xb.buf, ob.buf,
                                         q8 ? q8_reserve(x.n_cols) : VK_NULL_HANDLE, bb.buf};
    dev_->reserve(0, 1);
    dev_->dispatch(dev_->subgroups() ? "add_rms_norm_sg" : "add_rms_norm", bufs, &pc, sizeof pc, u32(x.n_rows), 1, 1);
    if (q8) q8_mark(out, ob);
}

void VulkanBackend::rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) {
    require(x.n_cols == int64_t(n_head) * head_dim && int64_t(pos.size()) == x.n_rows, "rope",
            "x " + shape(x) + " is not " + std::to_string(pos.size()) + " tokens of " + std::to_string(n_head) + " heads of " +
                std::to_string(head_dim));
    require(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim, "rope",
            "n_rot " + std::to_string(p.n_rot) + " must be even and at most head_dim " + std::to_string(head_dim));
    if (x.n_rows == 0) return;
    const Bound xb = bind(x, "rope");
    const uint64_t words = uint64_t(x.n_rows) * uint64_t(p.n_rot);
    dev_->reserve(words, 1);
    uint32_t cs_off = 0;
    float* cs = reinterpret_cast<float*>(dev_->arena(words, &cs_off));
    rope_table(p, pos, cs);
    const uint32_t pc[] = {xb.off, xb.stride, uint32_t(n_head), uint32_t(head_dim), uint32_t(p.n_rot),
                           p.mode == RopeParams::Mode::Neox ? 1u : 0u, cs_off};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, xb.buf, dev_->arena_buffer()};
    dev_->dispatch("rope", b, pc, sizeof pc, u32((int64_t(n_head) * (p.n_rot / 2) + 63) / 64), u32(x.n_rows), 1);
}

VulkanBackend::KvLayerBuffers VulkanBackend::bind_kv(const KvView& kv, int layer, const char* op) {
    require(kv.type == GgmlType::F16 || kv.type == GgmlType::F32, op, "the KV cache must be F16 or F32");
    require(layer >= 0 && size_t(layer) < kv.layers.size(), op, "layer " + std::to_string(layer) + " is not in the KV view");
    require(kv.type != GgmlType::F16 || kv.n_kv_dim % 2 == 0, op, "an F16 KV cache needs an even n_kv_dim");
    const KvLayerView& l = kv.layers[size_t(layer)];
    uint64_t ko = 0, vo = 0;
    const DeviceBuffer* kd = dev_->resolve(l.k, &ko);
    const DeviceBuffer* vd = dev_->resolve(l.v, &vo);
    if (kd && vd) {
        require(ko == 0 && vo == 0, op, "device KV layers must start their buffers");
        return {kd->buf, vd->buf};
    }
    // A host cache: use (or make) its device copy.
    const void* key = kv.layers[0].k;
    KvMirror& m = kv_mirrors_[key];
    if (m.n_cells != kv.n_cells || m.n_kv_dim != kv.n_kv_dim || m.n_layer != kv.layers.size() || m.type != kv.type) {
        m.k.clear();
        m.v.clear();
        const uint64_t bytes = uint64_t(kv.n_cells) * uint64_t(kv.n_kv_dim) * (kv.type == GgmlType::F16 ? 2 : 4);
        for (size_t i = 0; i < kv.layers.size(); ++i) {
            m.k.push_back(dev_->alloc(bytes, "the KV cache"));
            m.v.push_back(dev_->alloc(bytes, "the KV cache"));
            dev_->fill_zero(m.k.back()->buf, 0, bytes);
            dev_->fill_zero(m.v.back()->buf, 0, bytes);
        }
        m.n_cells = kv.n_cells;
        m.n_kv_dim = kv.n_kv_dim;
        m.n_layer = kv.layers.size();
        m.type = kv.type;
    }
    m.last_use = ++kv_clock_;
    // Caches that went away leave their copies behind; keep the few most recent.
    constexpr size_t kMaxMirrors = 4;
    while (kv_mirrors_.size() > kMaxMirrors) {
        auto oldest = kv_mirrors_.begin();
        for (auto it = kv_mirrors_.begin(); it != kv_mirrors_.end(); ++it)
            if (it->second.last_use < oldest->second.last_use) oldest = it;
        kv_mirrors_.erase(oldest);
    }
    KvMirror& cur = kv_mirrors_.at(key);
    return {cur.k[size_t(layer)]->buf, cur.v[size_t(layer)]->buf};
}

void VulkanBackend::kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells) {
    require(k.n_cols == kv.n_kv_dim && v.n_cols == kv.n_kv_dim && k.n_rows == v.n_rows && int64_t(cells.size()) == k.n_rows,
            "kv_store", "k " + shape(k) + " / v " + shape(v) + " do not match the cache's n_kv_dim " + std::to_string(kv.n_kv_dim));
    for (int32_t c : cells) require(c >= 0 && c < kv.n_cells, "kv_store", "cell " + std::to_string(c) + " is outside the cache");
    if (cells.empty()) return;
    const KvLayerBuffers l = bind_kv(kv, layer, "kv_store");
    const Bound kb = bind(k, "kv_store"), vb = bind(v, "kv_store");
    dev_->reserve(cells.size(), 2);
    uint32_t cells_off = 0;
    std::memcpy(dev_->arena(cells.size(), &cells_off), cells.data(), cells.size() * 4);
    const bool f16 = kv.type == GgmlType::F16;
    const uint32_t gx = u32(((f16 ? kv.n_kv_dim / 2 : kv.n_kv_dim) + 63) / 64);
    for (int i = 0; i < 2; ++i) {
        const Bound& s = i == 0 ? kb : vb;
        const uint32_t pc[] = {s.off, s.stride, u32(kv.n_kv_dim), cells_off, f16 ? 1u : 0u};
        const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, s.buf, dev_->arena_buffer(), i == 0 ? l.k : l.v};
        dev_->dispatch("kv_store", b, pc, sizeof pc, gx, u32(k.n_rows), 1);
    }
}

void VulkanBackend::rope_kv_store(Act q, Act k, const Act& v, int n_head, int head_dim, std::span<const int32_t> pos,
                                  const RopeParams& p, const KvView& kv, int layer, std::span<const int32_t> cells) {
    const int64_t n_head_kv = head_dim > 0 ? k.n_cols / head_dim : 0;
    require(head_dim > 0 && q.n_cols == int64_t(n_head) * head_dim && k.n_cols == n_head_kv * head_dim &&
                k.n_rows == q.n_rows && int64_t(pos.size()) == q.n_rows, "rope_kv_store",
            "q " + shape(q) + " and k " + shape(k) + " are not " + std::to_string(pos.size()) + " tokens of heads of " +
                std::to_string(head_dim));
    require(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim, "rope_kv_store",
            "n_rot " + std::to_string(p.n_rot) + " must be even and at most head_dim " + std::to_string(head_dim));
    require(k.n_cols == kv.n_kv_dim && v.n_cols == kv.n_kv_dim && k.n_rows == v.n_rows && int64_t(cells.size()) == k.n_rows,
            "rope_kv_store", "k " + shape(k) + " / v " + shape(v) + " do not match the cache's n_kv_dim " +
                                 std::to_string(kv.n_kv_dim));
    for (int32_t c : cells)
        require(c >= 0 && c < kv.n_cells, "rope_kv_store", "cell " + std::to_string(c) + " is outside the cache");
    // A k head goes through 256 floats of shared memory, and F16 stores go by pairs.
    constexpr int kMaxHeadDim = 256;
    if (head_dim > kMaxHeadDim || head_dim % 2 != 0) {
        Backend::rope_kv_store(q, k, v, n_head, head_dim, pos, p, kv, layer, cells);
        return;
    }
    if (q.n_rows == 0) return;
    const KvLayerBuffers l = bind_kv(kv, layer, "rope_kv_store");
    const Bound qb = bind(q, "rope_kv_store"), kb = bind(k, "rope_kv_store"), vb = bind(v, "rope_kv_store");
    const uint64_t n_tok = uint64_t(q.n_rows), table = n_tok * uint64_t(p.n_rot);
    dev_->reserve(table + n_tok, 1);
    uint32_t cs_off = 0;
    uint32_t* a = dev_->arena(table + n_tok, &cs_off);
    rope_table(p, pos, reinterpret_cast<float*>(a));
    std::memcpy(a + table, cells.data(), n_tok * 4);
    const uint32_t pc[] = {qb.off, qb.stride, kb.off, kb.stride, vb.off, vb.stride,
                           uint32_t(n_head), uint32_t(head_dim), uint32_t(p.n_rot), p.mode == RopeParams::Mode::Neox ? 1u : 0u,
                           cs_off, uint32_t(cs_off + table), u32(kv.n_kv_dim), kv.type == GgmlType::F16 ? 1u : 0u};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, qb.buf, dev_->arena_buffer(), l.k, l.v, kb.buf, vb.buf};
    dev_->dispatch("rope_kv_store", b, pc, sizeof pc, u32(n_head + n_head_kv), u32(q.n_rows), 1);
}

void VulkanBackend::attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                              std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) {
    require(p.n_head > 0 && p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0 && p.head_dim > 0 && p.head_dim <= 256 &&
                p.head_dim % 2 == 0, "attention",
            "heads " + std::to_string(p.n_head) + "/" + std::to_string(p.n_head_kv) + " of dimension " +
                std::to_string(p.head_dim) + " (must be even and at most 256)");
    require(q.n_cols == int64_t(p.n_head) * p.head_dim && out.n_cols == q.n_cols && out.n_rows == q.n_rows &&
                int64_t(p.n_head_kv) * p.head_dim == kv.n_kv_dim && int64_t(pos.size()) == q.n_rows &&
                int64_t(seq.size()) == q.n_rows, "attention", "q " + shape(q) + " / out " + shape(out) + " do not match the heads");
    require(kv.n_scan >= 0 && kv.n_scan <= kv.n_cells, "attention", "n_scan is outside the cache");
    for (int32_t s : seq) require(s >= 0 && s < 64, "attention", "sequence id " + std::to_string(s) + " is outside [0, 64)");
    if (q.n_rows == 0) return;
    const KvLayerBuffers l = bind_kv(kv, layer, "attention");
    const Bound qb = bind(q, "attention"), ob = bind(out, "attention");
    const uint64_t n_scan = uint64_t(kv.n_scan), n_tok = uint64_t(q.n_rows);
    // cell_pos, cell_seqs (two words each), token positions, token sequences, and
    // the tokens' visible cell ranges (two words each: attention_cells.h).
    const uint64_t words = n_scan * 3 + n_tok * 4 + 4;
    dev_->reserve(words, 2);  // attention may take a merge dispatch too
    uint32_t base = 0;
    uint32_t* a = dev_->arena(words, &base);
    std::memcpy(a, kv.cell_pos, n_scan * 4);
    std::memcpy(a + n_scan, kv.cell_seqs, n_scan * 8);
    std::memcpy(a + n_scan * 3, pos.data(), n_tok * 4);
    std::memcpy(a + n_scan * 3 + n_tok, seq.data(), n_tok * 4);
    const bool f16 = kv.type == GgmlType::F16;
    struct {
        uint32_t q_off, q_stride, o_off, o_stride, group, head_dim, n_kv_dim, n_scan, f16;
        float scale;
        uint32_t cell_pos_off, cell_seqs_off, tok_pos_off, tok_seq_off;
    } pc{qb.off, qb.stride, ob.off, ob.stride, uint32_t(p.n_head / p.n_head_kv), uint32_t(p.head_dim),
         u32(kv.n_kv_dim), uint32_t(n_scan), f16 ? 1u : 0u, p.scale, base,
         uint32_t(base + n_scan), uint32_t(base + n_scan * 3), uint32_t(base + n_scan * 3 + n_tok)};
    // Prompts over an F16 cache: 64 queries a workgroup on cooperative matrices
    // (attention_cm.glsl, which reads n_tok after the common parameters).
    if (dev_->coopmat() && f16 && (p.head_dim == 64 || p.head_dim == 128) && kv.n_kv_dim % 8 == 0 &&
        n_tok >= kAttentionCmMinTokens) {
        const struct {
            decltype(pc) base;
            uint32_t n_tok;
        } cpc{pc, uint32_t(n_tok)};
        const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, qb.buf, dev_->arena_buffer(), l.k, l.v, ob.buf};
        dev_->dispatch(p.head_dim == 64 ? "attention_cm64" : "attention_cm128", b, &cpc, sizeof cpc,
                       uint32_t(p.n_head), uint32_t((n_tok + 63) / 64), 1);
        return;
    }
    // Every other batch. The visible ranges cut each token's chunk loop (a causal
    // prompt's token t reads about t cells, not n_scan).
    attn_ranges_.compute(kv, pos, seq, reinterpret_cast<int32_t*>(a + n_scan * 3 + n_tok * 2));
    const bool rows16 = p.head_dim % (f16 ? 8 : 4) == 0;  // key and value rows on 16 bytes
    const uint64_t split_cells = attention_split_cells(n_scan, uint64_t(p.n_head) * n_tok);
    const uint64_t n_split = std::max<uint64_t>((n_scan + split_cells - 1) / split_cells, 1);
    // The output feeds the output projection: its q8 copy comes with it (whole blocks per head).
    const bool q8 = q8_on_output(out) && p.head_dim % 32 == 0;
    const uint32_t q8_words = q8 ? q8_stride(out.n_cols) : 0;
    const VkBuffer q8_buf = q8 ? q8_reserve(out.n_cols) : VK_NULL_HANDLE;
    struct {
        decltype(pc) base;
        uint32_t split_cells, q8_stride, tok_range_off;
    } dpc{pc, uint32_t(split_cells), n_split == 1 ? q8_words : 0, uint32_t(base + n_scan * 3 + n_tok * 2)};
    VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, qb.buf, dev_->arena_buffer(), l.k, l.v, ob.buf};
    if (n_split > 1) b[6] = attention_partials(n_tok * uint64_t(p.n_head) * n_split * uint64_t(p.head_dim + 2));
    else b[7] = q8_buf;
    const bool sg = dev_->subgroups();
    const char* shader = rows16 ? (sg ? "attention_decode_sg" : "attention_decode")
                                : (sg ? "attention_decode_rows_sg" : "attention_decode_rows");
    dev_->dispatch(shader, b, &dpc, sizeof dpc, uint32_t(p.n_head), uint32_t(n_tok), uint32_t(n_split));
    if (n_split > 1) {
        const uint32_t mpc[] = {ob.off, ob.stride, uint32_t(p.head_dim), uint32_t(n_split), q8_words};
        const VkBuffer mb[kMaxBindings] = {VK_NULL_HANDLE, b[6], VK_NULL_HANDLE, VK_NULL_HANDLE, VK_NULL_HANDLE, ob.buf,
                                           VK_NULL_HANDLE, q8_buf};
        dev_->dispatch("attention_merge", mb, mpc, sizeof mpc, uint32_t(p.n_head), uint32_t(n_tok), 1);
    }
    if (q8) q8_mark(out, ob);
}

VkBuffer VulkanBackend::attention_partials(uint64_t floats) {
    if (!attn_part_ || attn_part_->size < floats * 4) attn_part_ = dev_->alloc(floats * 4, "attention partials");
    return attn_part_->buf;
}

namespace {
void elementwise(VulkanDevice& dev, const char* shader, VkBuffer ab, const uint32_t (&ao)[2], VkBuffer bb,
                 const uint32_t (&bo)[2], VkBuffer ob, const uint32_t (&oo)[2], int64_t n_rows, int64_t n_cols) {
    const uint32_t pc[] = {uint32_t(n_cols), ao[0], ao[1], bo[0], bo[1], oo[0], oo[1]};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, ab, bb, ob};
    dev.reserve(0, 1);
    dev.dispatch(shader, b, pc, sizeof pc, uint32_t((n_cols + 255) / 256), uint32_t(n_rows), 1);
}
}  // namespace

void VulkanBackend::swiglu(const Act& gate, const Act& up, Act out) {
    require(gate.n_rows == up.n_rows && gate.n_cols == up.n_cols && out.n_rows == gate.n_rows && out.n_cols == gate.n_cols,
            "swiglu", "gate " + shape(gate) + ", up " + shape(up) + ", out " + shape(out) + " differ");
    if (gate.n_rows == 0) return;
    const Bound g = bind(gate, "swiglu"), u = bind(up, "swiglu"), o = bind(out, "swiglu");
    if (!q8_on_output(out)) {
        elementwise(*dev_, "swiglu", g.buf, {g.off, g.stride}, u.buf, {u.off, u.stride}, o.buf, {o.off, o.stride},
                    gate.n_rows, gate.n_cols);
        return;
    }
    // Decode: out feeds the down projection; its q8 copy comes with it.
    const uint32_t pc[] = {u32(gate.n_cols), g.off, g.stride, u.off, u.stride, o.off, o.stride, q8_stride(gate.n_cols)};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, g.buf, u.buf, q8_reserve(gate.n_cols), o.buf};
    dev_->reserve(0, 1);
    dev_->dispatch("swiglu_q8", b, pc, sizeof pc, u32((gate.n_cols / 32 + 63) / 64), u32(gate.n_rows), 1);
    q8_mark(out, o);
}

void VulkanBackend::add(const Act& a, const Act& b, Act out) {
    require(a.n_rows == b.n_rows && a.n_cols == b.n_cols && out.n_rows == a.n_rows && out.n_cols == a.n_cols, "add",
            "a " + shape(a) + ", b " + shape(b) + ", out " + shape(out) + " differ");
    if (a.n_rows == 0) return;
    const Bound x = bind(a, "add"), y = bind(b, "add"), o = bind(out, "add");
    elementwise(*dev_, "add", x.buf, {x.off, x.stride}, y.buf, {y.off, y.stride}, o.buf, {o.off, o.stride}, a.n_rows, a.n_cols);
}

void VulkanBackend::softmax(Act x) {
    if (x.n_rows == 0) return;
    const Bound xb = bind(x, "softmax");
    const uint32_t pc[] = {u32(x.n_cols), xb.off, xb.stride};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, xb.buf};
    dev_->reserve(0, 1);
    dev_->dispatch("softmax", b, pc, sizeof pc, u32(x.n_rows), 1, 1);
}

void VulkanBackend::copy_rows(const Act& src, std::span<const int32_t> rows, Act out) {
    require(out.n_cols == src.n_cols && out.n_rows == int64_t(rows.size()), "copy_rows",
            "out " + shape(out) + " is not " + std::to_string(rows.size()) + " rows of " + std::to_string(src.n_cols));
    for (int32_t r : rows) require(r >= 0 && r < src.n_rows, "copy_rows", "row " + std::to_string(r) + " is outside src");
    if (rows.empty()) return;
    const Bound s = bind(src, "copy_rows"), o = bind(out, "copy_rows");
    dev_->reserve(rows.size(), 1);
    uint32_t rows_off = 0;
    std::memcpy(dev_->arena(rows.size(), &rows_off), rows.data(), rows.size() * 4);
    const uint32_t pc[] = {u32(src.n_cols), s.off, s.stride, rows_off, o.off, o.stride};
    const VkBuffer b[kMaxBindings] = {VK_NULL_HANDLE, s.buf, dev_->arena_buffer(), o.buf};
    dev_->dispatch("copy_rows", b, pc, sizeof pc, u32(std::min<int64_t>((src.n_cols + 127) / 128, 64)), u32(int64_t(rows.size())), 1);
}

}  // namespace kiln::vk
