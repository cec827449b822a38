// The trace build's timeline (launch_trace.h): kept only when KILN_CUDA_TRACE is on.
#ifdef KILN_CUDA_TRACE
#include "kernels/cuda/launch_trace.h"

#include <cuda_runtime.h>
#include <cxxabi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::cuda {

namespace {

struct Launch {
    const void* kernel;
    unsigned blocks;
    bool segment_start;
};

std::mutex g_mutex;
TraceStamp* g_buffer = nullptr;
std::vector<Launch> g_launches;
bool g_segment_pending = false;
struct HostTime {
    double us = 0;
    long n = 0;
};
HostTime g_host_calls[TraceHostCall::kKinds];
std::map<std::string, HostTime> g_host_ops;

uint64_t now_ns() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}

// Demangled, namespaces and parameters dropped.
std::string kernel_name(const void* kernel) {
    const char* mangled = nullptr;
    if (cudaFuncGetName(&mangled, kernel) != cudaSuccess || !mangled) return "?";
    int status = 0;
    char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string s = status == 0 && d ? d : mangled;
    std::free(d);
    for (const char* drop : {"kiln::cuda::", "(anonymous namespace)::"})
        for (size_t p; (p = s.find(drop)) != std::string::npos;) s.erase(p, std::string(drop).size());
    if (const size_t paren = s.find('('); paren != std::string::npos) s.resize(paren);
    return s;
}

std::vector<void (*)(TraceStamp*)>& attachers() {
    static std::vector<void (*)(TraceStamp*)> v;  // filled by static initializers
    return v;
}

}  // namespace

void trace_register_attach(void (*attach)(TraceStamp*)) { attachers().push_back(attach); }

void trace_attach_all() {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_buffer) {
        if (cudaMalloc(&g_buffer, kTraceSlots * sizeof(TraceStamp)) != cudaSuccess) std::abort();
        cudaMemset(g_buffer, 0, kTraceSlots * sizeof(TraceStamp));
    }
    for (auto* attach : attachers()) attach(g_buffer);
    cudaDeviceSynchronize();
    std::fprintf(stderr, "kiln cuda trace: %zu kernel files attached\n", attachers().size());
}

void trace_note_launch(const void* kernel, unsigned grid_blocks) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_launches.push_back({kernel, grid_blocks, g_segment_pending});
    g_segment_pending = false;
}

TraceHostOp::TraceHostOp(const char* op) : op_(op), t0_ns_(now_ns()) {}
TraceHostOp::~TraceHostOp() {
    const double us = double(now_ns() - t0_ns_) / 1e3;
    std::lock_guard<std::mutex> lock(g_mutex);
    HostTime& t = g_host_ops[op_];
    t.us += us;
    ++t.n;
}

TraceHostCall::TraceHostCall(Kind kind) : kind_(kind), t0_ns_(now_ns()) {}
TraceHostCall::~TraceHostCall() {
    const double us = double(now_ns() - t0_ns_) / 1e3;
    std::lock_guard<std::mutex> lock(g_mutex);
    g_host_calls[kind_].us += us;
    ++g_host_calls[kind_].n;
}

void trace_note_segment() {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_segment_pending = true;
}

void trace_report() {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_buffer) return;
    cudaDeviceSynchronize();
    std::vector<TraceStamp> slots(kTraceSlots);
    cudaMemcpy(slots.data(), g_buffer, slots.size() * sizeof(TraceStamp), cudaMemcpyDeviceToHost);
    const uint64_t n = std::min<uint64_t>(slots[0].ns, kTraceSlots - 1);
    std::vector<uint64_t> order;
    for (uint64_t i = 1; i <= n; ++i) order.push_back(slots[i].ns);
    // The stamps' order is the kernels': each waits for the one before it.
    std::fprintf(stderr, "kiln cuda trace: %zu launches noted, %zu kernels stamped\n", g_launches.size(), order.size());
    if (order.size() != g_launches.size() || order.size() < 2) {
        std::fprintf(stderr, "kiln cuda trace: counts differ (a kernel without wait_prior_grid?); no table\n");
    } else {
        struct Row {
            double total_us = 0, max_us = 0;
            long n = 0;
        };
        std::map<std::pair<const void*, unsigned>, Row> rows;  // by kernel and grid size
        double total = 0;
        for (size_t i = 0; i + 1 < order.size(); ++i) {
            const double us = double(int64_t(order[i + 1] - order[i])) / 1e3;
            Row& r = rows[{g_launches[i].kernel, g_launches[i].blocks}];
            r.total_us += us;
            r.max_us = std::max(r.max_us, us);
            ++r.n;
            total += us;
        }
        std::vector<std::pair<std::string, Row>> sorted;
        for (const auto& [key, r] : rows)
            sorted.push_back({kernel_name(key.first) + " [" + std::to_string(key.second) + "]", r});
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto& a, const auto& b) { return a.second.total_us > b.second.total_us; });
        std::fprintf(stderr, "%10s %8s %9s %9s  %s\n", "total us", "count", "mean us", "max us", "kernel [blocks]");
        for (const auto& [name, r] : sorted)
            std::fprintf(stderr, "%10.0f %8ld %9.2f %9.2f  %s\n", r.total_us, r.n, r.total_us / double(r.n),
                         r.max_us, name.c_str());
        std::fprintf(stderr, "%10.0f us in all\n", total);
        for (const auto& [op, t] : g_host_ops)
            std::fprintf(stderr, "kiln cuda trace, host, op %-30s %8ld calls %7.2f us each\n", op.c_str(), t.n,
                         t.us / double(t.n));
        const char* kinds[TraceHostCall::kKinds] = {"kernel launch", "graph segment", "begin capture",
                                                    "staging copy"};
        for (int k = 0; k < TraceHostCall::kKinds; ++k)
            if (g_host_calls[k].n)
                std::fprintf(stderr, "kiln cuda trace, host, call %-21s %8ld calls %7.2f us each\n", kinds[k],
                             g_host_calls[k].n, g_host_calls[k].us / double(g_host_calls[k].n));
        const char* tail_env = std::getenv("KILN_CUDA_TRACE_TAIL");
        const size_t tail = std::min<size_t>(tail_env ? std::strtoul(tail_env, nullptr, 10) : 0, order.size() - 1);
        for (size_t i = order.size() - 1 - tail; i + 1 < order.size(); ++i)
            std::fprintf(stderr, "%6zu %c %8.2f  %s [%u]\n", i, g_launches[i].segment_start ? '*' : ' ',
                         double(int64_t(order[i + 1] - order[i])) / 1e3, kernel_name(g_launches[i].kernel).c_str(),
                         g_launches[i].blocks);
    }
    g_launches.clear();
    g_host_ops.clear();
    for (HostTime& t : g_host_calls) t = {};
    cudaMemset(g_buffer, 0, kTraceSlots * sizeof(TraceStamp));
}

}  // namespace kiln::cuda
#endif
