#pragma once
// Measures the machine's memory read bandwidth the way decode uses memory:
// several threads streaming through a buffer far larger than the caches.
#include <cstddef>

namespace kiln::cli {

struct BandwidthResult {
    double bytes_per_second;  // best of the repetitions
    size_t buffer_bytes;
    int n_threads;
};

BandwidthResult measure_read_bandwidth(int n_threads, size_t buffer_bytes = size_t(1) << 30, int repetitions = 5);

}  // namespace kiln::cli
