#include "kernels/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "formats/quant_traits.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch_trace.h"

namespace kiln::cuda {

namespace {

[[noreturn]] void throw_bad_args(const char* op, const std::string& what) {
    throw BackendError(std::string("cuda backend: ") + op + ": " + what);
}
// The message is built only when the check fails: the host records a decode step's
// ~200 ops while the GPU runs the previous ones, and formatting shapes for every
// op cost it microseconds each.
#define KILN_REQUIRE(ok, op, what)               \
    do {                                         \
        if (!(ok)) throw_bad_args((op), (what)); \
    } while (0)

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw CudaError(std::string("cuda backend: ") + what + " failed: " + cudaGetErrorName(e) + " (" +
                        cudaGetErrorString(e) + ")");
}

std::string shape(const Act& a) {
    std::string s = "[";
    s += std::to_string(a.n_rows);
    s += ", ";
    s += std::to_string(a.n_cols);
    s += "]";
    return s;
}

// A switch for A/B runs and bisecting: on unless the variable is "0".
bool env_on(const char* name) {
    const char* v = std::getenv(name);
    return !(v && std::strcmp(v, "0") == 0);
}

std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

bool has_kernels(GgmlType t) {
    switch (t) {
        case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
        case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
        case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
            return true;
        default:
            return false;
    }
}

DevWeight dev(const Weight& w) {
    return {w.type(), w.device, device_bytes(w.type(), w.n_in()), w.n_in(), w.n_out()};
}

constexpr size_t kStageBytes = 8u << 20;
constexpr size_t kStageAlign = 256;

cudaStream_t st(CUstream_st* s) { return s; }

}  // namespace

std::vector<CudaDeviceInfo> cuda_list_devices() {
    std::vector<CudaDeviceInfo> out;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // no driver / no device: an empty list, not an error
        return out;
    }
    int current = 0;
    cudaGetDevice(&current);
    for (int i = 0; i < n; ++i) {
        cudaDeviceProp p{};
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
        CudaDeviceInfo d;
        d.index = i;
        d.name = p.name;
        d.cc_major = p.major;
        d.cc_minor = p.minor;
        d.total_bytes = p.totalGlobalMem;
        d.n_sm = p.multiProcessorCount;
        if (cudaSetDevice(i) == cudaSuccess) cudaMemGetInfo(&d.free_bytes, &d.total_bytes);
        out.push_back(d);
    }
    cudaSetDevice(current);
    cudaGetLastError();
    return out;
}

CudaBackend::CudaBackend(const CudaOptions& options) {
    const auto devs = cuda_list_devices();
    if (devs.empty())
        throw CudaError("cuda backend: no CUDA device found (is the NVIDIA driver installed and a GPU visible?); use --backend cpu");
    if (options.device < 0 || size_t(options.device) >= devs.size())
        throw CudaError("cuda backend: device " + std::to_string(options.device) + " does not exist (" +
                        std::to_string(devs.size()) + " CUDA device(s) found)");
    info_ = devs[size_t(options.device)];
    if (info_.cc_major < 8)
        throw CudaError("cuda backend: " + info_.name + " has compute capability " + std::to_string(info_.cc_major) + "." +
                        std::to_string(info_.cc_minor) + "; kiln's CUDA kernels need 8.0 (Ampere) or newer");
    check(cudaSetDevice(options.device), "cudaSetDevice");
    // Programmatic dependent launch (launch.cuh) exists from sm_90; KILN_CUDA_PDL=0 turns
    // it off (for A/B runs and bisecting).
    set_pdl_launches(info_.cc_major >= 9 && env_on("KILN_CUDA_PDL"));
    fuse_rope_ = env_on("KILN_CUDA_FUSE_ROPE");
    fuse_norms_ = env_on("KILN_CUDA_FUSE_NORMS");
    mixed_runs_ = env_on("KILN_CUDA_MIXED_RUNS");
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    stream_ = s;
    check(cudaMallocHost(&stage_host_, kStageBytes), "allocating pinned staging memory");
    stage_dev_ = static_cast<uint8_t*>(device_alloc(kStageBytes, "staging"));
    stage_cap_ = kStageBytes;
#ifdef KILN_CUDA_TRACE
    trace_attach_all();
#endif
}

CudaBackend::~CudaBackend() {
    try {
        graph_.flush(stream_);
    } catch (const CudaError&) {
        // Destruction goes on: what was recorded is dropped with the stream.
    }
    cudaStreamSynchronize(st(stream_));
#ifdef KILN_CUDA_TRACE
    trace_report();
#endif
    for (void* p : weights_) cudaFree(p);
    for (auto& [key, m] : kv_mirrors_) free_mirror(m);
    cudaFree(xq_);
    cudaFree(xs_);
    cudaFree(xh_);
    cudaFree(split_);
    cudaFree(norm_xq_);
    cudaFree(norm_xs_);
    cudaFree(norm_ss_);
    cudaFree(attn_partial_);
    cudaFree(stage_dev_);
    cudaFreeHost(stage_host_);
    cudaStreamDestroy(st(stream_));
}

uint64_t CudaBackend::weight_bytes(GgmlType type, int64_t n_elements) {
    return device_bytes(type, n_elements);
}

size_t CudaBackend::free_bytes() const {
    size_t free = 0, total = 0;
    check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return free;
}

void CudaBackend::sync_stream(const char* what) {
    graph_.flush(stream_);
    check(cudaStreamSynchronize(st(stream_)), what);
}

void* CudaBackend::device_alloc(size_t bytes, const char* what) {
    graph_.flush(stream_);  // memory is never allocated inside a recording
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free = 0, total = 0;
        cudaMemGetInfo(&free, &total);
        throw CudaError("cuda backend: out of GPU memory allocating " + mib(bytes) + " for " + what + " on " + info_.name +
                        " (" + mib(free) + " free of " + mib(total) + "); offload fewer layers (-ngl) or use a smaller context");
    }
    return p;
}

void CudaBackend::check_launch(const char* op) {
    check(cudaGetLastError(), op);
    graph_.op_done(stream_);
}

void* CudaBackend::stage(const void* src, size_t bytes) {
    const size_t need = (bytes + kStageAlign - 1) / kStageAlign * kStageAlign;
    if (stage_used_ + need > stage_cap_) {
        // Everything staged so far may still be read by queued kernels.
        sync_stream("cudaStreamSynchronize");
        stage_used_ = 0;
        staged_.clear();
        if (need > stage_cap_) {
            cudaFree(stage_dev_);
            cudaFreeHost(stage_host_);
            stage_dev_ = nullptr;
            stage_host_ = nullptr;
            stage_cap_ = 0;
            check(cudaMallocHost(&stage_host_, need), "allocating pinned staging memory");
            stage_dev_ = static_cast<uint8_t*>(device_alloc(need, "staging"));
            stage_cap_ = need;
        }
    }
    // A decode step stages the same positions, cells and rope angles for every
    // layer: reuse a copy already on the device rather than queue another
    // transfer (each costs microseconds of the stream, hundreds of them a step).
    for (const StagedArray& a : staged_)
        if (a.bytes == bytes && std::memcmp(stage_host_ + a.offset, src, bytes) == 0) return stage_dev_ + a.offset;
    uint8_t* h = stage_host_ + stage_used_;
    uint8_t* d = stage_dev_ + stage_used_;
    std::memcpy(h, src, bytes);
    {
        KILN_TRACE_HOST_CALL(kStagingCopy);
        check(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, st(stream_)), "staging a host array");
    }
    if (staged_.size() == kMaxStagedReuse) staged_.erase(staged_.begin());
    staged_.push_back({stage_used_, bytes});
    stage_used_ += need;
    return d;
}

void CudaBackend::stage_parts(std::span<const StagePart> parts) {
    // 16-byte offsets: every part's device address fits any element type.
    auto padded = [](size_t bytes) { return (bytes + 15) / 16 * 16; };
    size_t total = 0;
    for (const StagePart& p : parts) total += padded(p.bytes);
    stage_scratch_.assign(total, 0);  // zeroed padding: stage() recognises an equal group
    size_t at = 0;
    for (const StagePart& p : parts) {
        if (p.bytes) std::memcpy(stage_scratch_.data() + at, p.src, p.bytes);
        at += padded(p.bytes);
    }
    const auto* base = total ? static_cast<const uint8_t*>(stage(stage_scratch_.data(), total)) : nullptr;
    at = 0;
    for (const StagePart& p : parts) {
        *p.dst = p.bytes ? base + at : nullptr;
        at += padded(p.bytes);
    }
}

Weight CudaBackend::upload_weight(const TensorView& host) {
    KILN_REQUIRE(has_kernels(host.type), "upload_weight",
            std::string("no CUDA kernels for weight type ") + quant_traits(host.type).name);
    const QuantTraits& q = quant_traits(host.type);
    KILN_REQUIRE(host.ne[0] % q.block_size == 0 && host.nb[1] == size_t(host.ne[0] / q.block_size) * q.block_bytes,
            "upload_weight", "rows of " + std::to_string(host.ne[0]) + " " + q.name + " elements must be whole, packed blocks");
    const int64_t blocks_per_row = host.ne[0] / q.block_size;
    const size_t dev_row = device_bytes(host.type, host.ne[0]);
    const size_t bytes = dev_row * size_t(host.n_rows());
    // Slack: the kernels read aligned 16-byte pieces and 4-byte words (blocks) that may
    // end past the last block.
    void* d = device_alloc((bytes + 15) / 16 * 16 + 16, "a weight");
    weights_.push_back(d);
    if (dev_row == host.nb[1]) {
        check(cudaMemcpy(d, host.data, bytes, cudaMemcpyHostToDevice), "uploading a weight");
        return Weight{host, d};
    }
    // Blocks padded to their device slots, a few MiB of rows at a time.
    const int64_t rows_per_copy = std::max<int64_t>(1, int64_t((16u << 20) / dev_row));
    std::vector<uint8_t> padded(size_t(rows_per_copy) * dev_row);
    const auto* src = static_cast<const uint8_t*>(host.data);
    for (int64_t r = 0; r < host.n_rows(); r += rows_per_copy) {
        const int64_t n = std::min(rows_per_copy, host.n_rows() - r);
        pad_blocks_for_device(host.type, src + size_t(r) * host.nb[1], n * blocks_per_row, padded.data());
        check(cudaMemcpy(static_cast<uint8_t*>(d) + size_t(r) * dev_row, padded.data(), size_t(n) * dev_row,
                         cudaMemcpyHostToDevice),
              "uploading a weight");
    }
    return Weight{host, d};
}

ActBuffer CudaBackend::alloc_act(int64_t n_rows, int64_t n_cols) {
    KILN_REQUIRE(n_rows > 0 && n_cols > 0, "alloc_act", "shape must be positive");
    // Rows 256 bytes apart keep every row 16-byte aligned for vector loads.
    const int64_t stride = (n_cols + 63) / 64 * 64;
    const size_t bytes = size_t(n_rows) * size_t(stride) * 4;
    void* d = device_alloc(bytes, "activations");
    check(cudaMemset(d, 0, bytes), "clearing activations");
    std::shared_ptr<void> storage(d, [](void* p) { cudaFree(p); });
    return ActBuffer(Act{static_cast<float*>(d), n_rows, n_cols, stride}, std::move(storage));
}

void CudaBackend::write_act(Act dst, const float* src) {
    if (dst.n_rows == 0) return;
    graph_.flush(stream_);  // pageable host memory cannot be part of a recording
    xq_src_ = nullptr;
    check(cudaMemcpy2DAsync(dst.data, size_t(dst.stride) * 4, src, size_t(dst.n_cols) * 4, size_t(dst.n_cols) * 4,
                            size_t(dst.n_rows), cudaMemcpyHostToDevice, st(stream_)),
          "write_act");
    // The caller may reuse src as soon as we return.
    sync_stream("write_act");
}

void CudaBackend::read_act(const Act& src, float* dst) {
    KILN_TRACE_HOST_OP("read_act");
    if (src.n_rows == 0) return;
    graph_.flush(stream_);
    check(cudaMemcpy2DAsync(dst, size_t(src.n_cols) * 4, src.data, size_t(src.stride) * 4, size_t(src.n_cols) * 4,
                            size_t(src.n_rows), cudaMemcpyDeviceToHost, st(stream_)),
          "read_act");
    sync_stream("read_act");
}

void CudaBackend::synchronize() {
    sync_stream("synchronize (a kernel failed earlier)");
    stage_used_ = 0;
    staged_.clear();
}

void CudaBackend::get_rows(const Weight& table, std::span<const int32_t> ids, Act out) {
    KILN_TRACE_HOST_OP("get_rows");
    const TensorView& w = table.host;
    KILN_REQUIRE(out.n_cols == w.ne[0] && out.n_rows == int64_t(ids.size()), "get_rows",
            "out " + shape(out) + " does not match " + std::to_string(ids.size()) + " rows of " + std::to_string(w.ne[0]));
    for (int32_t id : ids)
        KILN_REQUIRE(id >= 0 && id < w.n_rows(), "get_rows", "row " + std::to_string(id) + " is outside the table");
    if (ids.empty()) return;
    // The embedding lookup opens a forward pass: record the small ones (decode steps).
    if (ids.size() <= size_t(kMatvecMaxTokens)) graph_.begin(stream_);
    xq_src_ = nullptr;
    const auto* d_ids = ids.size() == 1 ? nullptr : static_cast<const int32_t*>(stage(ids.data(), ids.size_bytes()));
    cuda::get_rows(dev(table), d_ids, ids[0], int(ids.size()), out, st(stream_));
    check_launch("get_rows");
}

void CudaBackend::reserve_q8(const Act& x) {
    const size_t q_bytes = size_t(x.n_rows) * size_t(x.n_cols);
    if (q_bytes <= xq_cap_) return;
    sync_stream("cudaStreamSynchronize");
    cudaFree(xq_);
    cudaFree(xs_);
    xq_ = nullptr;
    xs_ = nullptr;
    xq_cap_ = 0;
    xq_src_ = nullptr;
    xq_ = static_cast<int8_t*>(device_alloc(q_bytes, "quantized activations"));
    xs_ = device_alloc(q_bytes / 32 * sizeof(float4), "quantized activations");
    xq_cap_ = q_bytes;
}

void CudaBackend::require_fits(const Weight& w, const Act& x, const Act& y, const char* op) const {
    KILN_REQUIRE(x.n_cols == w.n_in() && y.n_cols == w.n_out() && x.n_rows == y.n_rows, op,
            "x " + shape(x) + " and y " + shape(y) + " do not fit weight [" + std::to_string(w.n_out()) + ", " +
                std::to_string(w.n_in()) + "]");
}

void CudaBackend::quantize_input(const Act& x) {
    reserve_q8(x);
    if (converted(x, false)) return;
    quantize_act_q8(x, xq_, static_cast<float4*>(xs_), st(stream_));
    mark_converted(x, false);
}

const __half* CudaBackend::f16_input(const Act& x) {
    const MmaActShape s = mma_act_shape(x.n_rows, x.n_cols);
    const size_t h_bytes = size_t(s.n_tok_pad) * size_t(s.ld) * sizeof(__half);
    if (h_bytes > xh_cap_) {
        sync_stream("cudaStreamSynchronize");
        cudaFree(xh_);
        xh_ = nullptr;
        xh_cap_ = 0;
        xq_src_ = nullptr;
        xh_ = device_alloc(h_bytes, "F16 activations");
        xh_cap_ = h_bytes;
    }
    if (!converted(x, true)) {
        convert_act_f16(x, static_cast<__half*>(xh_), st(stream_));
        mark_converted(x, true);
    }
    return static_cast<const __half*>(xh_);
}

void CudaBackend::run_matmul_mma(const DevWeight* ws, const Act* ys, int n, const __half* xh, int64_t n_tok) {
    const MmaPlan plan = plan_matmul_mma(ws, n, n_tok, info_.n_sm);
    const int64_t floats = plan.scratch_floats(n_tok);
    if (floats > split_cap_) {
        sync_stream("cudaStreamSynchronize");  // kernels queued before may still read the old buffer
        cudaFree(split_);
        split_ = nullptr;
        split_cap_ = 0;
        split_ = static_cast<float*>(device_alloc(size_t(floats) * sizeof(float), "split matmul sums"));
        split_cap_ = floats;
    }
    matmul_mma(plan, ws, ys, n, xh, n_tok, split_, st(stream_));
}

void CudaBackend::matmul(const Weight& w, const Act& x, Act y) {
    KILN_TRACE_HOST_OP("matmul");
    require_fits(w, x, y, "matmul");
    if (x.n_rows == 0) return;
    const DevWeight dw = dev(w);
    if (x.n_rows > kMatvecMaxTokens) {
        run_matmul_mma(&dw, &y, 1, f16_input(x), x.n_rows);
    } else if (matvec_q8_supported(w.type())) {
        quantize_input(x);
        matvec_q8(&dw, &y, 1, xq_, static_cast<const float4*>(xs_), int(x.n_rows), st(stream_));
    } else {
        matvec_float(dw, x, y, st(stream_));
    }
    if (y.data == xq_src_) xq_src_ = nullptr;
    check_launch("matmul");
}

bool CudaBackend::require_matmul_n(const Act& x, std::span<const Weight* const> ws, std::span<const Act> ys,
                                   const char* op) const {
    KILN_REQUIRE(ws.size() == ys.size(), op, std::to_string(ws.size()) + " weights for " + std::to_string(ys.size()) +
                                            " outputs");
    bool all_q8 = true;
    for (size_t i = 0; i < ws.size(); ++i) {
        require_fits(*ws[i], x, ys[i], op);
        KILN_REQUIRE(ys[i].data != x.data, op, "an output aliases the input");
        all_q8 = all_q8 && matvec_q8_supported(ws[i]->type());
    }
    return all_q8;
}

void CudaBackend::matmul_n(const Act& x, std::span<const Weight* const> ws, std::span<const Act> ys) {
    KILN_TRACE_HOST_OP("matmul_n");
    const bool all_q8 = require_matmul_n(x, ws, ys, "matmul_n");
    if (x.n_rows == 0) return;
    if (x.n_rows > kMatvecMaxTokens) {
        const __half* xh = f16_input(x);
        for_each_type_run(ws, ys, [&](const DevWeight* group, const Act* outs, int n) {
            run_matmul_mma(group, outs, n, xh, x.n_rows);
        });
        for (const Act& y : ys)
            if (y.data == xq_src_) xq_src_ = nullptr;
        check_launch("matmul_n");
        return;
    }
    if (!all_q8) {
        for (size_t i = 0; i < ws.size(); ++i) matmul(*ws[i], x, ys[i]);
        return;
    }
    quantize_input(x);
    matvec_q8_runs(ws, ys, xq_, xs_, int(x.n_rows), {});
    check_launch("matmul_n");
}

template <class F>
void CudaBackend::for_each_type_run(std::span<const Weight* const> ws, std::span<const Act> ys, F&& f) {
    for (size_t i = 0; i < ws.size();) {
        DevWeight group[kMatvecMaxGroup];
        Act outs[kMatvecMaxGroup];
        int n = 0;
        while (i < ws.size() && n < kMatvecMaxGroup && (n == 0 || ws[i]->type() == group[0].type)) {
            group[n] = dev(*ws[i]);
            outs[n] = ys[i];
            ++n;
            ++i;
        }
        f(group, outs, n);
    }
}

void CudaBackend::matvec_q8_runs(std::span<const Weight* const> ws, std::span<const Act> ys, const int8_t* xq,
                                 const void* xs, int n_tok, const NormIn& norm) {
    // Weights of one type (most groups) go straight to the launches a run.
    if (norm.ss && n_tok == 1 && mixed_runs_ && ws.size() <= size_t(kMatvecMaxGroup) &&
        ws.front()->type() != ws.back()->type()) {
        DevWeight group[kMatvecMaxGroup];
        for (size_t i = 0; i < ws.size(); ++i) group[i] = dev(*ws[i]);
        if (matvec_q8_two(group, ys.data(), int(ws.size()), xq, static_cast<const float4*>(xs), norm, st(stream_)))
            return;
    }
    for_each_type_run(ws, ys, [&](const DevWeight* group, const Act* outs, int n) {
        matvec_q8(group, outs, n, xq, static_cast<const float4*>(xs), n_tok, st(stream_), norm);
    });
}

void CudaBackend::reserve_norm(int64_t n_cols) {
    if (n_cols <= norm_cap_) return;
    sync_stream("cudaStreamSynchronize");
    cudaFree(norm_xq_);
    cudaFree(norm_xs_);
    cudaFree(norm_ss_);
    norm_xq_ = nullptr;
    norm_xs_ = nullptr;
    norm_ss_ = nullptr;
    norm_cap_ = 0;
    const size_t groups = size_t(n_cols / 32);
    norm_xq_ = static_cast<int8_t*>(device_alloc(size_t(n_cols), "the folded norm"));
    norm_xs_ = device_alloc(groups * sizeof(float4), "the folded norm");
    norm_ss_ = static_cast<float*>(device_alloc(groups * sizeof(float), "the folded norm"));
    norm_cap_ = n_cols;
}

void CudaBackend::matmul_add_rms_norm_matmul_n(const Weight& w, const Act& in, Act proj, Act x, const Weight& norm,
                                               float eps, Act normed, std::span<const Weight* const> ws,
                                               std::span<const Act> ys) {
    KILN_TRACE_HOST_OP("matmul_add_rms_norm_matmul_n");
    // Checked first on either path: nothing runs for outputs that do not fit.
    const bool all_q8 = require_matmul_n(x, ws, ys, "matmul_add_rms_norm_matmul_n");
    // The producer's blocks of 32 rows run one a multiprocessor: fold only where they are one wave.
    const bool fold = fuse_norms_ && all_q8 && in.n_rows == 1 && x.n_rows == 1 && x.n_cols % 32 == 0 &&
                      x.n_cols / 32 <= info_.n_sm && matvec_q8_supported(w.type()) && norm.type() == GgmlType::F32 &&
                      norm.host.ne[0] == x.n_cols;
    if (!fold) {
        Backend::matmul_add_rms_norm_matmul_n(w, in, proj, x, norm, eps, normed, ws, ys);
        return;
    }
    require_fits(w, in, x, "matmul_add_rms_norm_matmul_n");
    for (const Act& y : ys) KILN_REQUIRE(y.data != in.data, "matmul_add_rms_norm_matmul_n", "an output aliases an input");
    KILN_REQUIRE(x.data != in.data, "matmul_add_rms_norm_matmul_n", "x aliases the product's input");
    KILN_REQUIRE(proj.n_rows == x.n_rows && proj.n_cols == x.n_cols && normed.n_rows == x.n_rows &&
                normed.n_cols == x.n_cols, "matmul_add_rms_norm_matmul_n",
            "proj " + shape(proj) + " and normed " + shape(normed) + " must be shaped as x " + shape(x));
    reserve_norm(x.n_cols);
    quantize_input(in);
    NormOut out;
    out.x = x.data;
    out.weight = static_cast<const float*>(norm.device);
    out.xq = norm_xq_;
    out.xs = static_cast<float4*>(norm_xs_);
    out.ss = norm_ss_;
    matvec_q8_norm_out(dev(w), xq_, static_cast<const float4*>(xs_), out, st(stream_));
    matvec_q8_runs(ws, ys, norm_xq_, norm_xs_, 1, {norm_ss_, eps});
    // xq_ still holds `in`: neither x nor an output is `in` (refused above).
    check_launch("matmul_add_rms_norm_matmul_n");
}

void CudaBackend::add_rms_norm(Act x, const Act& b, const Weight& weight, float eps, Act out) {
    KILN_TRACE_HOST_OP("add_rms_norm");
    xq_src_ = nullptr;  // rewrites x
    KILN_REQUIRE(b.n_rows == x.n_rows && b.n_cols == x.n_cols && weight.type() == GgmlType::F32 &&
                weight.host.ne[0] == x.n_cols && out.n_cols == x.n_cols && out.n_rows == x.n_rows,
            "add_rms_norm", "x " + shape(x) + ", b " + shape(b) + ", out " + shape(out) + " and an F32 weight of " +
                                std::to_string(weight.host.ne[0]) + " do not match");
    if (x.n_rows == 0) return;
    if (!rms_norm_can_fuse_add(x.n_cols)) {
        Backend::add_rms_norm(x, b, weight, eps, out);
        return;
    }
    const bool q8 = x.n_rows <= kMatvecMaxTokens && rms_norm_can_quantize(x.n_cols);
    if (q8) reserve_q8(out);
    cuda::add_rms_norm(x, b, static_cast<const float*>(weight.device), eps, out, st(stream_), q8 ? xq_ : nullptr,
                       q8 ? static_cast<float4*>(xs_) : nullptr);
    if (q8) mark_converted(out, false);
    check_launch("add_rms_norm");
}

void CudaBackend::rms_norm(const Act& x, const Weight& weight, float eps, Act out) {
    KILN_TRACE_HOST_OP("rms_norm");
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    KILN_REQUIRE(weight.type() == GgmlType::F32 && weight.host.ne[0] == x.n_cols && out.n_cols == x.n_cols &&
                out.n_rows == x.n_rows, "rms_norm", "x " + shape(x) + ", out " + shape(out) + " and an F32 weight of " +
                std::to_string(weight.host.ne[0]) + " do not match");
    if (x.n_rows == 0) return;
    // Decode: the normed rows feed matrix-vector products; quantize them on the way out.
    if (x.n_rows <= kMatvecMaxTokens && rms_norm_can_quantize(x.n_cols)) {
        reserve_q8(out);
        cuda::rms_norm(x, static_cast<const float*>(weight.device), eps, out, st(stream_), xq_,
                       static_cast<float4*>(xs_));
        mark_converted(out, false);
    } else {
        cuda::rms_norm(x, static_cast<const float*>(weight.device), eps, out, st(stream_));
    }
    check_launch("rms_norm");
}

void CudaBackend::require_rope(const RopeParams& p, int head_dim, const char* op) const {
    KILN_REQUIRE(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim, op,
            "n_rot " + std::to_string(p.n_rot) + " must be even and at most head_dim " + std::to_string(head_dim));
}

void CudaBackend::require_cells(const KvView& kv, std::span<const int32_t> cells, const char* op) const {
    for (int32_t c : cells) KILN_REQUIRE(c >= 0 && c < kv.n_cells, op, "cell " + std::to_string(c) + " is outside the cache");
}

std::span<const float> CudaBackend::rope_angles(std::span<const int32_t> pos, const RopeParams& p) {
    // The angles come from the reference helper so every backend rotates by the same bits.
    rope_cs_.resize(pos.size() * size_t(p.n_rot));
    const ref::RopeCorrDims corr = ref::rope_yarn_corr_dims(p);
    for (size_t t = 0; t < pos.size(); ++t) {
        float* cs = rope_cs_.data() + t * size_t(p.n_rot);
        ref::rope_cos_sin(p, corr, pos[t], cs, cs + p.n_rot / 2);
    }
    return rope_cs_;
}

const float* CudaBackend::rope_table(std::span<const int32_t> pos, const RopeParams& p) {
    const std::span<const float> cs = rope_angles(pos, p);
    return static_cast<const float*>(stage(cs.data(), cs.size_bytes()));
}

void CudaBackend::rope(Act x, int n_head, int head_dim, std::span<const int32_t> pos, const RopeParams& p) {
    KILN_TRACE_HOST_OP("rope");
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    KILN_REQUIRE(x.n_cols == int64_t(n_head) * head_dim && int64_t(pos.size()) == x.n_rows, "rope",
            "x " + shape(x) + " is not " + std::to_string(pos.size()) + " tokens of " + std::to_string(n_head) + " heads of " +
                std::to_string(head_dim));
    require_rope(p, head_dim, "rope");
    if (x.n_rows == 0) return;
    cuda::rope(x, n_head, head_dim, p.n_rot, p.mode == RopeParams::Mode::Neox, rope_table(pos, p), st(stream_));
    check_launch("rope");
}

void CudaBackend::free_mirror(KvMirror& m) {
    for (KvLayer& l : m.layers) {
        cudaFree(l.k);
        cudaFree(l.v);
        l = {nullptr, nullptr};
    }
}

CudaBackend::KvLayer CudaBackend::kv_layer(const KvView& kv, int layer, const char* op) {
    KILN_REQUIRE(kv.type == GgmlType::F16 || kv.type == GgmlType::F32, op, "the KV cache must be F16 or F32");
    KILN_REQUIRE(layer >= 0 && size_t(layer) < kv.layers.size(), op, "layer " + std::to_string(layer) + " is not in the KV view");
    const KvLayerView& l = kv.layers[size_t(layer)];
    // A cache already mirrored is host memory: skip asking the driver again.
    if (auto known = kv_mirrors_.find(kv.layers[0].k); known != kv_mirrors_.end()) {
        KvMirror& m = known->second;
        if (m.n_cells == kv.n_cells && m.n_kv_dim == kv.n_kv_dim && m.type == kv.type &&
            m.layers.size() == kv.layers.size() && m.layers[size_t(layer)].k) {
            m.last_use = ++kv_clock_;
            return m.layers[size_t(layer)];
        }
    }
    graph_.flush(stream_);  // a driver query, once per cache layer: outside any recording
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, l.k) == cudaSuccess && attr.type == cudaMemoryTypeDevice) return {l.k, l.v};
    cudaGetLastError();
    // A host cache: use (or make) its device copy.
    const void* key = kv.layers[0].k;
    KvMirror& m = kv_mirrors_[key];
    if (m.n_cells != kv.n_cells || m.n_kv_dim != kv.n_kv_dim || m.type != kv.type || m.layers.size() != kv.layers.size()) {
        sync_stream("cudaStreamSynchronize");
        free_mirror(m);
        m.layers.assign(kv.layers.size(), KvLayer{nullptr, nullptr});
        m.n_cells = kv.n_cells;
        m.n_kv_dim = kv.n_kv_dim;
        m.type = kv.type;
    }
    m.last_use = ++kv_clock_;
    KvLayer& dl = m.layers[size_t(layer)];
    if (!dl.k) {
        const size_t bytes = size_t(kv.n_cells) * size_t(kv.n_kv_dim) * (kv.type == GgmlType::F16 ? 2 : 4);
        dl.k = device_alloc(bytes, "the KV cache");
        dl.v = device_alloc(bytes, "the KV cache");
        check(cudaMemsetAsync(dl.k, 0, bytes, st(stream_)), "clearing the KV cache");
        check(cudaMemsetAsync(dl.v, 0, bytes, st(stream_)), "clearing the KV cache");
    }
    // Caches that went away leave their copies behind: drop the least recently
    // used beyond a generous count (one per live context is what is needed).
    constexpr size_t kMaxMirrors = 16;
    if (kv_mirrors_.size() > kMaxMirrors) {
        sync_stream("cudaStreamSynchronize");
        auto oldest = kv_mirrors_.begin();
        for (auto it = kv_mirrors_.begin(); it != kv_mirrors_.end(); ++it)
            if (it->second.last_use < oldest->second.last_use) oldest = it;
        free_mirror(oldest->second);
        kv_mirrors_.erase(oldest);
    }
    return kv_mirrors_.at(key).layers[size_t(layer)];
}

void CudaBackend::require_rope_kv(const Act& q, const Act& k, const Act& v, int n_head, int head_dim,
                                  std::span<const int32_t> pos, const RopeParams& p, const KvView& kv,
                                  std::span<const int32_t> cells, const char* op) const {
    KILN_REQUIRE(head_dim > 0 && q.n_cols == int64_t(n_head) * head_dim && k.n_cols == kv.n_kv_dim && v.n_cols == kv.n_kv_dim &&
                kv.n_kv_dim % head_dim == 0 && q.n_rows == k.n_rows && k.n_rows == v.n_rows &&
                int64_t(pos.size()) == q.n_rows && int64_t(cells.size()) == q.n_rows,
            op, "q " + shape(q) + ", k " + shape(k) + ", v " + shape(v) + " do not fit " + std::to_string(n_head) +
                    " heads of " + std::to_string(head_dim) + " and the cache's n_kv_dim " + std::to_string(kv.n_kv_dim));
    require_rope(p, head_dim, op);
    require_cells(kv, cells, op);
}

void CudaBackend::rope_kv_store(Act q, Act k, const Act& v, int n_head, int head_dim, std::span<const int32_t> pos,
                                const RopeParams& p, const KvView& kv, int layer, std::span<const int32_t> cells) {
    KILN_TRACE_HOST_OP("rope_kv_store");
    xq_src_ = nullptr;  // rewrites q and k
    require_rope_kv(q, k, v, n_head, head_dim, pos, p, kv, cells, "rope_kv_store");
    if (q.n_rows == 0) return;
    const KvLayer l = kv_layer(kv, layer, "rope_kv_store");
    RopeKvArgs a;
    a.q = q.data;
    a.q_stride = q.stride;
    a.k = k.data;
    a.k_stride = k.stride;
    a.v = v.data;
    a.v_stride = v.stride;
    a.n_head = n_head;
    a.head_dim = head_dim;
    a.n_rot = p.n_rot;
    a.neox = p.mode == RopeParams::Mode::Neox;
    a.cs = rope_table(pos, p);
    a.k_cache = l.k;
    a.v_cache = l.v;
    a.f16 = kv.type == GgmlType::F16;
    a.n_kv_dim = kv.n_kv_dim;
    a.cells = static_cast<const int32_t*>(stage(cells.data(), cells.size_bytes()));
    cuda::rope_kv_store(a, int(q.n_rows), st(stream_));
    check_launch("rope_kv_store");
}

void CudaBackend::kv_store(const KvView& kv, int layer, const Act& k, const Act& v, std::span<const int32_t> cells) {
    KILN_TRACE_HOST_OP("kv_store");
    KILN_REQUIRE(k.n_cols == kv.n_kv_dim && v.n_cols == kv.n_kv_dim && k.n_rows == v.n_rows && int64_t(cells.size()) == k.n_rows,
            "kv_store", "k " + shape(k) + " / v " + shape(v) + " do not match the cache's n_kv_dim " + std::to_string(kv.n_kv_dim));
    require_cells(kv, cells, "kv_store");
    if (cells.empty()) return;
    const KvLayer l = kv_layer(kv, layer, "kv_store");
    const auto* d_cells = static_cast<const int32_t*>(stage(cells.data(), cells.size_bytes()));
    const bool f16 = kv.type == GgmlType::F16;
    cuda::kv_store(l.k, f16, kv.n_kv_dim, k, d_cells, st(stream_));
    cuda::kv_store(l.v, f16, kv.n_kv_dim, v, d_cells, st(stream_));
    check_launch("kv_store");
}

void CudaBackend::attention(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                            std::span<const int32_t> pos, std::span<const int32_t> seq, Act out) {
    KILN_TRACE_HOST_OP("attention");
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    if (q.n_rows == 0) {
        require_attention(q, kv, p, pos, seq, out);
        return;
    }
    AttentionArgs a = attention_args(q, kv, layer, p, pos, seq, out);
    launch_attention(a, out);
}

void CudaBackend::rope_kv_attention(Act q, Act k, const Act& v, std::span<const int32_t> pos,
                                    std::span<const int32_t> seq, const RopeParams& rope, const AttentionParams& p,
                                    const KvView& kv, int layer, std::span<const int32_t> cells, Act out) {
    KILN_TRACE_HOST_OP("rope_kv_attention");
    // One token: the rope and the store inside the decode attention (cuda_ops.h,
    // AttentionArgs::rope), one kernel fewer a layer.
    if (q.n_rows != 1 || !fuse_rope_) {
        Backend::rope_kv_attention(q, k, v, pos, seq, rope, p, kv, layer, cells, out);
        return;
    }
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    require_rope_kv(q, k, v, p.n_head, p.head_dim, pos, rope, kv, cells, "rope_kv_attention");
    AttentionArgs a = attention_args(q, kv, layer, p, pos, seq, out, rope_angles(pos, rope));
    a.rope.k = k.data;
    a.rope.v = v.data;
    a.rope.n_rot = rope.n_rot;
    a.rope.neox = rope.mode == RopeParams::Mode::Neox;
    a.rope.cell = cells[0];
    launch_attention(a, out);
}

void CudaBackend::require_attention(const Act& q, const KvView& kv, const AttentionParams& p,
                                    std::span<const int32_t> pos, std::span<const int32_t> seq, const Act& out) const {
    KILN_REQUIRE(p.n_head > 0 && p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0 && p.head_dim > 0 &&
                p.head_dim <= kAttentionMaxHeadDim, "attention",
            "heads " + std::to_string(p.n_head) + "/" + std::to_string(p.n_head_kv) + " of dimension " +
                std::to_string(p.head_dim) + " (at most " + std::to_string(kAttentionMaxHeadDim) + ")");
    KILN_REQUIRE(q.n_cols == int64_t(p.n_head) * p.head_dim && out.n_cols == q.n_cols && out.n_rows == q.n_rows &&
                int64_t(p.n_head_kv) * p.head_dim == kv.n_kv_dim && int64_t(pos.size()) == q.n_rows &&
                int64_t(seq.size()) == q.n_rows, "attention", "q " + shape(q) + " / out " + shape(out) + " do not match the heads");
    KILN_REQUIRE(kv.n_scan >= 0 && kv.n_scan <= kv.n_cells, "attention", "n_scan is outside the cache");
    for (int32_t s : seq) KILN_REQUIRE(s >= 0 && s < 64, "attention", "sequence id " + std::to_string(s) + " is outside [0, 64)");
}

AttentionArgs CudaBackend::attention_args(const Act& q, const KvView& kv, int layer, const AttentionParams& p,
                                          std::span<const int32_t> pos, std::span<const int32_t> seq, Act out,
                                          std::span<const float> rope_cs) {
    require_attention(q, kv, p, pos, seq, out);
    const KvLayer l = kv_layer(kv, layer, "attention");
    AttentionArgs a;
    a.q = q;
    a.out = out;
    a.k = l.k;
    a.v = l.v;
    a.f16 = kv.type == GgmlType::F16;
    a.n_kv_dim = kv.n_kv_dim;
    a.n_scan = int(kv.n_scan);
    const size_t n_scan = size_t(std::max<int64_t>(kv.n_scan, 0));
    const StagePart parts[] = {
        {kv.cell_pos, n_scan * 4, reinterpret_cast<const void**>(&a.cell_pos)},
        {kv.cell_seqs, n_scan * 8, reinterpret_cast<const void**>(&a.cell_seqs)},
        {pos.data(), pos.size_bytes(), reinterpret_cast<const void**>(&a.tok_pos)},
        {seq.data(), seq.size_bytes(), reinterpret_cast<const void**>(&a.tok_seq)},
        {rope_cs.data(), rope_cs.size_bytes(), reinterpret_cast<const void**>(&a.rope.cs)},
    };
    stage_parts(parts);
    a.n_head = p.n_head;
    a.group = p.n_head / p.n_head_kv;
    a.head_dim = p.head_dim;
    a.scale = p.scale;
    a.n_split = q.n_rows >= kAttentionTiledMinTokens
                    ? 1
                    : attention_splits(int(q.n_rows), p.n_head, p.head_dim, a.n_scan, info_.n_sm);
    if (a.n_split > 1) {
        const size_t need = size_t(q.n_rows) * size_t(p.n_head) * size_t(a.n_split) * size_t(p.head_dim + 2);
        if (need > attn_partial_cap_) {
            sync_stream("cudaStreamSynchronize");
            cudaFree(attn_partial_);
            attn_partial_ = nullptr;
            attn_partial_cap_ = 0;
            attn_partial_ = static_cast<float*>(device_alloc(need * sizeof(float), "attention partials"));
            attn_partial_cap_ = need;
        }
        a.partial = attn_partial_;
    }
    // Decode: the output also quantized for the output projection, which then need not.
    if (q.n_rows <= kMatvecMaxTokens && p.head_dim % 32 == 0) {
        reserve_q8(out);
        a.xq = xq_;
        a.xs = static_cast<float4*>(xs_);
    }
    return a;
}

void CudaBackend::launch_attention(const AttentionArgs& a, const Act& out) {
    cuda::attention(a, st(stream_));
    if (a.xq) mark_converted(out, false);
    check_launch("attention");
}

void CudaBackend::swiglu(const Act& gate, const Act& up, Act out) {
    KILN_TRACE_HOST_OP("swiglu");
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    KILN_REQUIRE(gate.n_rows == up.n_rows && gate.n_cols == up.n_cols && out.n_rows == gate.n_rows && out.n_cols == gate.n_cols,
            "swiglu", "gate " + shape(gate) + ", up " + shape(up) + ", out " + shape(out) + " differ");
    if (gate.n_rows == 0) return;
    if (gate.n_rows <= kMatvecMaxTokens && gate.n_cols % 32 == 0) {  // decode: quantized for the down projection
        reserve_q8(out);
        cuda::swiglu(gate, up, out, st(stream_), xq_, static_cast<float4*>(xs_));
        mark_converted(out, false);
    } else {
        cuda::swiglu(gate, up, out, st(stream_));
    }
    check_launch("swiglu");
}

void CudaBackend::add(const Act& a, const Act& b, Act out) {
    KILN_TRACE_HOST_OP("add");
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    KILN_REQUIRE(a.n_rows == b.n_rows && a.n_cols == b.n_cols && out.n_rows == a.n_rows && out.n_cols == a.n_cols, "add",
            "a " + shape(a) + ", b " + shape(b) + ", out " + shape(out) + " differ");
    if (a.n_rows == 0) return;
    cuda::add(a, b, out, st(stream_));
    check_launch("add");
}

void CudaBackend::softmax(Act x) {
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    if (x.n_rows == 0) return;
    cuda::softmax(x, st(stream_));
    check_launch("softmax");
}

void CudaBackend::copy_rows(const Act& src, std::span<const int32_t> rows, Act out) {
    KILN_TRACE_HOST_OP("copy_rows");
    xq_src_ = nullptr;  // may rewrite the rows quantized last
    KILN_REQUIRE(out.n_cols == src.n_cols && out.n_rows == int64_t(rows.size()), "copy_rows",
            "out " + shape(out) + " is not " + std::to_string(rows.size()) + " rows of " + std::to_string(src.n_cols));
    for (int32_t r : rows) KILN_REQUIRE(r >= 0 && r < src.n_rows, "copy_rows", "row " + std::to_string(r) + " is outside src");
    if (rows.empty()) return;
    const auto* d_rows = static_cast<const int32_t*>(stage(rows.data(), rows.size_bytes()));
    cuda::copy_rows(src, d_rows, int(rows.size()), out, st(stream_));
    check_launch("copy_rows");
}

}  // namespace kiln::cuda
