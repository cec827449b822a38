#include "kernels/host_memory.h"
#include "kernels/cpu/cpu_backend.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "formats/fp16.h"
#include "formats/quant_traits.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cpu/q4_0_x16.h"

namespace kiln::cpu {

namespace {
std::string shape(const Act& a) { return "[" + std::to_string(a.n_rows) + ", " + std::to_string(a.n_cols) + "]"; }

void require(bool ok, const char* op, const std::string& what) {
    if (!ok) throw BackendError(std::string("cpu backend: ") + op + ": " + what);
}

// s[c] = limit[c] <= pos ? s[c] * scale : -inf, returning the maximum; in 8
// independent lanes so the compiler vectorizes it (one running max is a serial chain).
float masked_scale_max(float* s, const int32_t* limit, int64_t n, int32_t pos, float scale) {
    constexpr int kLanes = 8;
    float lane_max[kLanes];
    for (float& m : lane_max) m = -INFINITY;
    int64_t c = 0;
    for (; c + kLanes <= n; c += kLanes)
        for (int j = 0; j < kLanes; ++j) {
            const float v = limit[c + j] <= pos ? s[c + j] * scale : -INFINITY;
            s[c + j] = v;
            lane_max[j] = lane_max[j] > v ? lane_max[j] : v;
        }
    float m = -INFINITY;
    for (; c < n; ++c) {
        s[c] = limit[c] <= pos ? s[c] * scale : -INFINITY;
        m = std::max(m, s[c]);
    }
    for (float l : lane_max) m = std::max(m, l);
    return m;
}

int default_threads(int n) {
    if (n > 0) return n;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : int(hw);
}
}  // namespace

CpuBackend::CpuBackend(int n_threads) : CpuBackend(n_threads, cpu_kernels()) {}

CpuBackend::CpuBackend(int n_threads, const CpuKernels& kernels) : k_(kernels), pool_(default_threads(n_threads)) {
    scratch_.resize(size_t(pool_.n_threads()));
}

void CpuBackend::ensure_scratch(size_t n) {
    for (auto& s : scratch_)
        if (s.size() < n) s.resize(n);
}

Weight CpuBackend::upload_weight(const TensorView& host) {
    // Size the matmul scratch now, at load time, so ops never allocate for weights.
    // (dequantized tile, packed tile), each kTileRows * n_in floats.
    ensure_scratch(size_t(2 * kTileRows * host.ne[0]));
    const int64_t n_in = host.ne[0], n_rows = host.n_rows();
    if (host.type != GgmlType::Q4_0 || !k_.quant.q4_0_x16 || n_in % 32 != 0 || host.nb[1] != size_t(n_in / 32) * 18)
        return Weight{host, host.data};
    // The repacked copy replaces the file's bytes for matmul (the caller may drop
    // those pages); get_rows still reads the plain rows through `host`.
    const int64_t n_groups = q4_0_x16_groups(n_rows);
    const size_t bytes = size_t(n_groups) * q4_0_x16_group_bytes(n_in);
    // Checked before taking it: past MemAvailable the kernel would kill a process, not fail this call.
    const int64_t avail = host_memory_available();
    if (avail >= 0 && int64_t(bytes) > avail)
        throw BackendError("cpu backend: not enough RAM to load the model: a Q4_0 weight repacked for this CPU needs " +
                           format_bytes(int64_t(bytes)) + " more, " + format_bytes(avail) +
                           " are available; offload layers to a GPU (-ngl), take a smaller model or quantization, or "
                           "run KILN_CPU=scalar (reads the file's layout in place, slower)");
    void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!mem)
        throw BackendError("cpu backend: out of memory repacking a Q4_0 weight of " + std::to_string(bytes) +
                           " bytes; KILN_CPU=scalar runs on the file's own layout");
    repacked_.emplace_back(static_cast<uint8_t*>(mem), std::free);
    pool_.run(n_groups, [&](int64_t g, int) {
        repack_q4_0_x16(static_cast<const uint8_t*>(host.data), host.nb[1], n_rows, n_in, g, g + 1, static_cast<uint8_t*>(mem));
    });
    return Weight{host, mem};
}

ActBuffer CpuBackend::alloc_act(int64_t n_rows, int64_t n_cols) {
    const int64_t stride = (n_cols + 15) / 16 * 16;  // 64-byte aligned rows
    const size_t bytes = size_t(std::max<int64_t>(1, n_rows * stride)) * sizeof(float);
    void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!mem) throw BackendError("cpu backend: out of memory allocating " + std::to_string(bytes) + " bytes of activations");
    std::memset(mem, 0, bytes);
    return ActBuffer(Act{static_cast<float*>(mem), n_rows, n_cols, stride}, std::shared_ptr<void>(mem, std::free));
}

void CpuBackend::write_act(Act dst, const float* src) {
    for (int64_t r = 0; r < dst.n_rows; ++r) std::memcpy(dst.row(r), src + r * dst.n_cols, size_t(dst.n_cols) * sizeof(float));
}

void CpuBackend::read_act(const Act& src, float* dst) {
    for (int64_t r = 0; r < src.n_rows; ++r) std::memcpy(dst + r * src.n_cols, src.row(r), size_t(src.n_cols) * sizeof(float));
}

const float* CpuBackend::dequantize_rows(const TensorView& w, int64_t r0, int64_t n, float* dst) const {
    const int64_t n_in = w.ne[0];
    if (w.type == GgmlType::F32 && w.nb[1] == size_t(n_in) * sizeof(float))
        return reinterpret_cast<const float*>(w.row(r0));
    if (w.type == GgmlType::F16) {
        for (int64_t r = 0; r < n; ++r) k_.f16_to_f32(reinterpret_cast<const uint16_t*>(w.row(r0 + r)), dst + r * n_in, n_in);
        return dst;
    }
    const DequantizeFn deq = quant_traits(w.type).dequantize;
    for (int64_t r = 0; r < n; ++r) deq(w.row(r0 + r), dst + r * n_in, n_in);
    return dst;
}

void CpuBackend::get_rows(const Weight& table, std::span<const int32_t> ids, Act out) {
    const TensorView& w = table.host;
    require(out.n_cols == w.ne[0] && out.n_rows == int64_t(ids.size()), "get_rows",
            "output " + shape(out) + " does not match " + std::to_string(ids.size()) + " rows of " + std::to_string(w.ne[0]));
    for (size_t t = 0; t < ids.size(); ++t) {
        require(ids[t] >= 0 && ids[t] < w.n_rows(), "get_rows",
                "row " + std::to_string(ids[t]) + " is outside [0, " + std::to_string(w.n_rows()) + ")");
        const float* src = dequantize_rows(w, ids[t], 1, out.row(int64_t(t)));
        if (src != out.row(int64_t(t))) std::memcpy(out.row(int64_t(t)), src, size_t(w.ne[0]) * sizeof(float));
    }
}

uint8_t* CpuBackend::act_q8_scratch(size_t bytes) {
    // Grows to the largest batch seen, then never again.
    if (act_q8_.size() < bytes + 64) act_q8_.resize(bytes + 64);
    const uintptr_t p = reinterpret_cast<uintptr_t>(act_q8_.data());
    return act_q8_.data() + ((64 - p % 64) % 64);
}

void CpuBackend::matmul_quantized(const Weight& weight, int slot, const Act& x, Act y) {
    const TensorView& w = weight.host;
    const ActQuant aq = kIntDotTypes[slot].act;
    const int64_t n_in = w.ne[0], n_out = w.n_rows(), n_tok = x.n_rows;
    const size_t row_bytes = q8_row_bytes(aq, n_in);
    uint8_t* xq = act_q8_scratch(size_t(n_tok) * row_bytes);
    const QuantizeActFn quantize = k_.quant.quantize_act[int(aq)];
    pool_.run(n_tok, [&](int64_t t, int) { quantize(x.row(t), n_in, xq + size_t(t) * row_bytes); });
    QuantGemmFn gemm = k_.quant.gemm[slot];
    // Where upload_weight repacked the tensor (and this table reads that layout),
    // tiles start at group r0 / 16 of the copy instead of row r0 of the file.
    const bool repacked = w.type == GgmlType::Q4_0 && weight.device != w.data && k_.quant.q4_0_x16;
    static_assert(kTileRows % kQ4_0GroupRows == 0, "row tiles must be whole groups of the repacked layout");
    const size_t group_bytes = q4_0_x16_group_bytes(n_in);
    if (repacked) gemm = k_.quant.q4_0_x16;
    const int64_t n_chunks = (n_tok + kQuantTokChunk - 1) / kQuantTokChunk;
    // Decode: about 8 tasks per thread, enough to balance and few enough that
    // handing them out (an atomic shared by all threads) stays cheap next to
    // the work (a 32000-row output head in 16-row tiles spent 10% there).
    // Batches: 16-row tiles, each task already long (up to 64 tokens).
    const int64_t per_thread = (n_out + 8 * pool_.n_threads() - 1) / (8 * pool_.n_threads());
    const int64_t tile = n_chunks > 1 || n_tok > 8 ? kTileRows
                                                   : std::max(kTileRows, (per_thread + kTileRows - 1) / kTileRows * kTileRows);
    const int64_t n_tiles = (n_out + tile - 1) / tile;
    // Consecutive tasks take the next row tile of the same token chunk, so the
    // chunk's activations are read from cache while the weights stream past.
    pool_.run(n_tiles * n_chunks, [&](int64_t task, int) {
        const int64_t r0 = (task % n_tiles) * tile, t0 = (task / n_tiles) * kQuantTokChunk;
        const uint8_t* w0 = repacked ? static_cast<const uint8_t*>(weight.device) + size_t(r0 / kQ4_0GroupRows) * group_bytes
                                     : w.row(r0);
        gemm(w0, repacked ? group_bytes : w.nb[1], std::min(tile, n_out - r0), xq + size_t(t0) * row_bytes, row_bytes,
             std::min(kQuantTokChunk, n_tok - t0), n_in, y.row(t0) + r0, y.stride);
    });
}

void CpuBackend::matmul(const Weight& weight, const Act& x, Act y) {
    const TensorView& w = weight.host;
    const int64_t n_in = w.ne[0], n_out = w.n_rows();
    require(x.n_cols == n_in && y.n_cols == n_out && x.n_rows == y.n_rows, "matmul",
            "x " + shape(x) + " · W^T with W [" + std::to_string(n_out) + ", " + std::to_string(n_in) + "] into y " + shape(y));
    if (const int slot = int_dot_slot(w.type); slot >= 0) {
        require(n_in % act_block_size(kIntDotTypes[slot].act) == 0, "matmul",
                "a " + std::string(quant_traits(w.type).name) + " weight with rows of " + std::to_string(n_in) +
                    " values (not whole blocks)");
        matmul_quantized(weight, slot, x, y);
        return;
    }
    require(scratch_[0].size() >= size_t(2 * kTileRows * n_in), "matmul", "weight was not uploaded to this backend");
    const int64_t n_tiles = (n_out + kTileRows - 1) / kTileRows;
    if (w.type == GgmlType::F16 && x.n_rows <= 2) {
        // About 8 row ranges per thread, as in matmul_quantized.
        const int64_t rows = (n_out + 8 * pool_.n_threads() - 1) / (8 * pool_.n_threads());
        pool_.run((n_out + rows - 1) / rows, [&](int64_t task, int) {
            const int64_t r0 = task * rows, r1 = std::min(n_out, r0 + rows);
            for (int64_t t = 0; t < x.n_rows; ++t)
                for (int64_t r = r0; r < r1; ++r)
                    y.row(t)[r] = k_.dot_f16_f32(reinterpret_cast<const uint16_t*>(w.row(r)), x.row(t), n_in);
        });
        return;
    }
    pool_.run(n_tiles, [&](int64_t tile, int thread) {
        const int64_t r0 = tile * kTileRows;
        const int64_t n = std::min(kTileRows, n_out - r0);
        float* scratch = scratch_[size_t(thread)].data();
        const float* rows = dequantize_rows(w, r0, n, scratch);
        k_.gemm_f32(rows, n, x.data, x.stride, x.n_rows, n_in, y.data + r0, y.stride, scratch + kTileRows * n_in);
    });
}

void CpuBackend::rms_norm(const Act& x, const Weight& weight, float eps, Act out) {
    require(weight.type() == GgmlType::F32 && weight.n_in() == x.n_cols && out.n_cols == x.n_cols && out.n_rows == x.n_rows,
            "rms_norm", "x " + shape(x) + " with a weight of " + std::to_string(weight.n_in()) + " (must be F32)");
    const float* wt = static_cast<const float*>(weight.host.data);
    for (int64_t t = 0; t < x.n_rows; ++t) {
        const float* xt = x.row(t);
        const float ss = k_.dot_f32(xt, xt, x.n_cols);
        const float scale = 1.0f / std::sqrt(ss / float(x.n_cols) + eps);
        float* ot = out.row(t);
        for (int64_t i = 0; i < x.n_cols; ++i) ot[i] = xt[i] * scale * wt[i];
    }
}

void CpuBackend::rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) {
    require(x.n_cols == int64_t(n_head) * head_dim && int64_t(pos.size()) == x.n_rows && p.n_rot > 0 &&
                p.n_rot % 2 == 0 && p.n_rot <= head_dim,
            "rope", "x " + shape(x) + " with " + std::to_string(n_head) + " heads of " + std::to_string(head_dim) +
                        ", n_rot " + std::to_string(p.n_rot));
    const int half = p.n_rot / 2;
    if (rope_cs_.size() < size_t(p.n_rot)) rope_cs_.resize(size_t(p.n_rot));
    float* cs = rope_cs_.data();
    float* sn = cs + half;
    const ref::RopeCorrDims corr = ref::rope_yarn_corr_dims(p);
    const bool normal = p.mode == RopeParams::Mode::Normal;
    for (int64_t t = 0; t < x.n_rows; ++t) {
        ref::rope_cos_sin(p, corr, pos[size_t(t)], cs, sn);
        for (int h = 0; h < n_head; ++h) {
            float* v = x.row(t) + int64_t(h) * head_dim;
            if (normal) {
                for (int i = 0; i < half; ++i) {
                    const float x0 = v[2 * i], x1 = v[2 * i + 1];
                    v[2 * i] = x0 * cs[i] - x1 * sn[i];
                    v[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
                }
            } else {
                for (int i = 0; i < half; ++i) {
                    const float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * cs[i] - x1 * sn[i];
                    v[i + half] = x0 * sn[i] + x1 * cs[i];
                }
            }
        }
    }
}

void CpuBackend::kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells) {
    require(layer >= 0 && size_t(layer) < kv.layers.size() && k.n_cols == kv.n_kv_dim && v.n_cols == kv.n_kv_dim &&
                k.n_rows == v.n_rows && int64_t(cells.size()) == k.n_rows,
            "kv_store", "k " + shape(k) + ", v " + shape(v) + " into a cache of rows " + std::to_string(kv.n_kv_dim));
    for (int32_t c : cells) require(c >= 0 && c < kv.n_cells, "kv_store", "cell " + std::to_string(c) + " out of range");
    const KvLayerView& l = kv.layers[size_t(layer)];
    const int64_t n = kv.n_kv_dim;
    for (int64_t t = 0; t < k.n_rows; ++t) {
        const int64_t c = cells[size_t(t)];
        if (kv.type == GgmlType::F16) {
            uint16_t* kd = static_cast<uint16_t*>(l.k) + c * n;
            uint16_t* vd = static_cast<uint16_t*>(l.v) + c * n;
            k_.f32_to_f16(k.row(t), kd, n);
            k_.f32_to_f16(v.row(t), vd, n);
        } else {
            std::memcpy(static_cast<float*>(l.k) + c * n, k.row(t), size_t(n) * sizeof(float));
            std::memcpy(static_cast<float*>(l.v) + c * n, v.row(t), size_t(n) * sizeof(float));
        }
    }
}

// One token (every decode step): dot products straight off the cache rows and
// one pass over V, with no packing into gemm tiles; each V row is converted once
// for all the query heads of its KV head. `score` holds group * n_vis floats.
void CpuBackend::one_token_attention(const Act& q, const KvView& kv, const KvLayerView& l, const AttentionParams& p,
                                     int hk, int64_t t, int32_t tp, const int32_t* cell, const int32_t* limit,
                                     int64_t n_vis, float* score, float* row, Act out) const {
    const int64_t hd = p.head_dim;
    const int group = p.n_head / p.n_head_kv;
    const int64_t off = int64_t(hk) * hd;
    const bool f16 = kv.type == GgmlType::F16;
    for (int g = 0; g < group; ++g) {
        const int h = hk * group + g;
        float* st = score + g * n_vis;
        const float* qh = q.row(t) + int64_t(h) * hd;
        for (int64_t j = 0; j < n_vis; ++j) {
            const int64_t c = cell[j];
            st[j] = f16 ? k_.dot_f16_f32(static_cast<const uint16_t*>(l.k) + c * kv.n_kv_dim + off, qh, hd)
                        : k_.dot_f32(static_cast<const float*>(l.k) + c * kv.n_kv_dim + off, qh, hd);
        }
        float* o = out.row(t) + int64_t(h) * hd;
        std::fill(o, o + hd, 0.0f);
        const float max_s = n_vis > 0 ? masked_scale_max(st, limit, n_vis, tp, p.scale) : -INFINITY;
        if (max_s == -INFINITY) {  // nothing visible: a zero output, never NaN
            std::fill(st, st + n_vis, 0.0f);
            continue;
        }
        const float inv = 1.0f / k_.exp_sum_f32(st, n_vis, max_s);
        for (int64_t j = 0; j < n_vis; ++j) st[j] *= inv;
    }
    for (int64_t j = 0; j < n_vis; ++j) {
        const int64_t c = cell[j];
        const float* v = static_cast<const float*>(l.v) + c * kv.n_kv_dim + off;
        if (f16) {
            k_.f16_to_f32(static_cast<const uint16_t*>(l.v) + c * kv.n_kv_dim + off, row, hd);
            v = row;
        }
        for (int g = 0; g < group; ++g)
            k_.axpy_f32(score[g * n_vis + j], v, out.row(t) + int64_t(hk * group + g) * hd, hd);
    }
}

void CpuBackend::attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                           std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) {
    require(p.n_head > 0 && p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0 &&
                q.n_cols == int64_t(p.n_head) * p.head_dim && int64_t(p.n_head_kv) * p.head_dim == kv.n_kv_dim &&
                out.n_cols == q.n_cols && out.n_rows == q.n_rows && int64_t(pos.size()) == q.n_rows &&
                int64_t(seq.size()) == q.n_rows && layer >= 0 && size_t(layer) < kv.layers.size() &&
                (kv.type == GgmlType::F16 || kv.type == GgmlType::F32),
            "attention", "q " + shape(q) + " with " + std::to_string(p.n_head) + "/" + std::to_string(p.n_head_kv) +
                             " heads of " + std::to_string(p.head_dim) + " over cache rows of " + std::to_string(kv.n_kv_dim));
    for (int32_t s : seq) require(s >= 0 && s < 64, "attention", "sequence id " + std::to_string(s) + " outside [0, 64)");
    const int64_t n_scan = kv.n_scan;
    const int64_t hd = p.head_dim;
    constexpr int64_t kTokChunk = 32;
    const int64_t scan_pad = (n_scan + 15) / 16 * 16, hd_pad = (hd + 15) / 16 * 16;
    // Per thread: K and V of one KV head in gemm_f32_packed's layout, the chunk's
    // scores (kTokChunk, n_scan), one converted row, and the visible cells' indices and positions.
    ensure_scratch(size_t(scan_pad * hd + hd_pad * n_scan + kTokChunk * n_scan + hd + 2 * n_scan));
    const KvLayerView& l = kv.layers[size_t(layer)];
    const int group = p.n_head / p.n_head_kv;
    // Chunks are runs of up to kTokChunk consecutive tokens of one sequence, so each
    // reads only its own sequence's cells: a decode step of N slots is N chunks of one
    // token, each over its slot's cells, not N tokens over every slot's cells.
    std::vector<std::pair<int64_t, int64_t>>& chunks = attention_chunks_;
    chunks.clear();
    for (int64_t t = 0; t < q.n_rows;) {
        int64_t t1 = t + 1;
        while (t1 < q.n_rows && t1 - t < kTokChunk && seq[size_t(t1)] == seq[size_t(t)]) ++t1;
        chunks.emplace_back(t, t1);
        t = t1;
    }
    const int64_t n_chunks = int64_t(chunks.size());
    // Scores and outputs are two small matrix products per (KV head, token chunk),
    // run by the same register-blocked kernel as the float matmul:
    //   S = Q_h K^T (16 cells of K per tile), P = softmax(S), O_h = P V (16 dims per tile).
    pool_.run(int64_t(p.n_head_kv) * n_chunks, [&](int64_t task, int thread) {
        const int hk = int(task / n_chunks);
        const auto [t0, t_end] = chunks[size_t(task % n_chunks)];
        const int64_t nt = t_end - t0;
        const int32_t s_id = seq[size_t(t0)];
        // Cells past the chunk's last position are invisible to all of it (causal):
        // during prompt processing that skips about half the work.
        int32_t max_pos = -1;
        for (int64_t t = t0; t < t_end; ++t) max_pos = std::max(max_pos, pos[size_t(t)]);
        float* kpack = scratch_[size_t(thread)].data();
        float* vpack = kpack + scan_pad * hd;
        float* score = vpack + hd_pad * n_scan;  // (nt, n_hi)
        float* row = score + kTokChunk * n_scan;
        // The cells the chunk may see, in cache order: cell[j], visible to positions >= limit[j].
        int32_t* limit = reinterpret_cast<int32_t*>(row + hd);
        int32_t* cell = limit + n_scan;
        int64_t n_hi = 0;
        for (int64_t c = 0; c < n_scan; ++c)
            if (kv.cell_pos[c] >= 0 && kv.cell_pos[c] <= max_pos && ((kv.cell_seqs[c] >> s_id) & 1u)) {
                cell[n_hi] = int32_t(c);
                limit[n_hi] = kv.cell_pos[c];
                ++n_hi;
            }
        const int64_t off = int64_t(hk) * hd;
        if (nt == 1 && group <= kTokChunk) {
            one_token_attention(q, kv, l, p, hk, t0, pos[size_t(t0)], cell, limit, n_hi, score, row, out);
            return;
        }
        const int64_t n_hi_pad = (n_hi + 15) / 16 * 16;
        // kpack: tile j holds cells 16j.. as kpack[j * 16 * hd + i * 16 + r] = K[16j + r][i];
        // vpack: tile e holds dims 16e.. as vpack[e * 16 * n_hi + c * 16 + r] = V[c][16e + r].
        for (int64_t j = 0; j < n_hi_pad; ++j) {
            float* kt = kpack + (j / 16) * 16 * hd + j % 16;
            // Tile padding is zeros: 0 * stale scratch could be NaN.
            if (j >= n_hi) {
                for (int64_t i = 0; i < hd; ++i) kt[i * 16] = 0.0f;
                continue;
            }
            const int64_t c = cell[j];
            if (kv.type == GgmlType::F16)
                k_.f16_to_f32(static_cast<const uint16_t*>(l.k) + c * kv.n_kv_dim + off, row, hd);
            else
                std::memcpy(row, static_cast<const float*>(l.k) + c * kv.n_kv_dim + off, size_t(hd) * sizeof(float));
            for (int64_t i = 0; i < hd; ++i) kt[i * 16] = row[i];
            if (kv.type == GgmlType::F16)
                k_.f16_to_f32(static_cast<const uint16_t*>(l.v) + c * kv.n_kv_dim + off, row, hd);
            else
                std::memcpy(row, static_cast<const float*>(l.v) + c * kv.n_kv_dim + off, size_t(hd) * sizeof(float));
            for (int64_t d0 = 0; d0 < hd; d0 += 16) {
                float* vt = vpack + (d0 / 16) * 16 * n_hi + j * 16;
                for (int64_t r = 0; r < 16; ++r) vt[r] = d0 + r < hd ? row[d0 + r] : 0.0f;
            }
        }
        for (int h = hk * group; h < (hk + 1) * group; ++h) {
            const int64_t qo = int64_t(h) * hd;
            if (n_hi == 0) {
                for (int64_t t = t0; t < t0 + nt; ++t) std::fill(out.row(t) + qo, out.row(t) + qo + hd, 0.0f);
                continue;
            }
            for (int64_t c0 = 0; c0 < n_hi; c0 += 16)
                k_.gemm_f32_packed(kpack + (c0 / 16) * 16 * hd, std::min<int64_t>(16, n_hi - c0), q.row(t0) + qo, q.stride,
                                   nt, hd, score + c0, n_hi);
            for (int64_t t = t0; t < t0 + nt; ++t) {
                float* st = score + (t - t0) * n_hi;
                const int32_t tp = pos[size_t(t)];
                const float max_s = masked_scale_max(st, limit, n_hi, tp, p.scale);
                if (max_s == -INFINITY) {  // nothing visible: a zero output, never NaN
                    std::fill(st, st + n_hi, 0.0f);
                    continue;
                }
                const float inv = 1.0f / k_.exp_sum_f32(st, n_hi, max_s);
                for (int64_t c = 0; c < n_hi; ++c) st[c] *= inv;
            }
            for (int64_t d0 = 0; d0 < hd; d0 += 16)
                k_.gemm_f32_packed(vpack + (d0 / 16) * 16 * n_hi, std::min<int64_t>(16, hd - d0), score, n_hi, nt, n_hi,
                                   out.row(t0) + qo + d0, out.stride);
        }
    });
}

void CpuBackend::swiglu(const Act& gate, const Act& up, Act out) {
    require(gate.n_rows == up.n_rows && gate.n_cols == up.n_cols && out.n_rows == gate.n_rows && out.n_cols == gate.n_cols,
            "swiglu", "gate " + shape(gate) + ", up " + shape(up) + ", out " + shape(out));
    for (int64_t t = 0; t < gate.n_rows; ++t) k_.swiglu_f32(gate.row(t), up.row(t), out.row(t), gate.n_cols);
}

void CpuBackend::add(const Act& a, const Act& b, Act out) {
    require(a.n_rows == b.n_rows && a.n_cols == b.n_cols && out.n_rows == a.n_rows && out.n_cols == a.n_cols, "add",
            "a " + shape(a) + ", b " + shape(b) + ", out " + shape(out));
    for (int64_t t = 0; t < a.n_rows; ++t) {
        const float* x = a.row(t);
        const float* y = b.row(t);
        float* o = out.row(t);
        for (int64_t i = 0; i < a.n_cols; ++i) o[i] = x[i] + y[i];
    }
}

void CpuBackend::softmax(Act x) {
    for (int64_t t = 0; t < x.n_rows; ++t) {
        float* r = x.row(t);
        float m = -INFINITY;
        for (int64_t i = 0; i < x.n_cols; ++i) m = std::max(m, r[i]);
        const float inv = 1.0f / k_.exp_sum_f32(r, x.n_cols, m);
        for (int64_t i = 0; i < x.n_cols; ++i) r[i] *= inv;
    }
}

void CpuBackend::copy_rows(const Act& src, std::span<const int32_t> rows, Act out) {
    require(out.n_cols == src.n_cols && out.n_rows == int64_t(rows.size()), "copy_rows",
            "src " + shape(src) + " into out " + shape(out));
    for (size_t i = 0; i < rows.size(); ++i) {
        require(rows[i] >= 0 && rows[i] < src.n_rows, "copy_rows", "row " + std::to_string(rows[i]) + " out of range");
        std::memmove(out.row(int64_t(i)), src.row(rows[i]), size_t(src.n_cols) * sizeof(float));
    }
}

}  // namespace kiln::cpu
