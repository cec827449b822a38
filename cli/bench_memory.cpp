#include "cli/bench_memory.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace kiln::cli {

namespace {

// Sums 64-bit words with independent accumulators so the loads, not the adds,
// set the pace; the sum is returned so the compiler cannot drop the reads.
uint64_t read_range(const uint64_t* p, size_t n) {
    uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a += p[i]; b += p[i + 1]; c += p[i + 2]; d += p[i + 3];
        e ^= p[i + 4]; f ^= p[i + 5]; g ^= p[i + 6]; h ^= p[i + 7];
    }
    for (; i < n; ++i) a += p[i];
    return a + b + c + d + (e ^ f ^ g ^ h);
}

}  // namespace

BandwidthResult measure_read_bandwidth(int n_threads, size_t buffer_bytes, int repetitions) {
    n_threads = std::max(1, n_threads);
    const size_t n_words = buffer_bytes / sizeof(uint64_t);
    std::vector<uint64_t> buffer(n_words);
    // Touch every page from the thread that will read it (first-touch NUMA placement).
    const size_t per_thread = (n_words + size_t(n_threads) - 1) / size_t(n_threads);
    auto run = [&](auto&& body) {
        std::vector<std::thread> threads;
        for (int t = 0; t < n_threads; ++t)
            threads.emplace_back([&, t] {
                const size_t begin = std::min(n_words, size_t(t) * per_thread);
                const size_t end = std::min(n_words, begin + per_thread);
                body(begin, end);
            });
        for (auto& th : threads) th.join();
    };
    run([&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) buffer[i] = i;
    });
    std::vector<uint64_t> sinks(size_t(n_threads) * 8);
    double best = 0;
    for (int r = 0; r < repetitions; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        run([&](size_t b, size_t e) { sinks[(b / std::max<size_t>(per_thread, 1)) * 8] += read_range(buffer.data() + b, e - b); });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(n_words * sizeof(uint64_t)) / s);
    }
    volatile uint64_t keep = 0;
    for (auto v : sinks) keep = keep + v;
    (void)keep;
    return {best, n_words * sizeof(uint64_t), n_threads};
}

}  // namespace kiln::cli
