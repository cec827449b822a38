#include "kernels/host_memory.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace kiln {

namespace {
int64_t meminfo_available() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    int64_t kb = 0;
    std::string unit;
    while (f >> key >> kb) {
        std::getline(f, unit);
        if (key == "MemAvailable:") return kb * 1024;
    }
    return -1;
}

// KILN_MAX_HOST_MEMORY in bytes, or -1 when unset.
int64_t cap() {
    const char* env = std::getenv("KILN_MAX_HOST_MEMORY");
    if (!env || !*env) return -1;
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    double scale = 1;
    if (*end == 'K' || *end == 'k') scale = 1024.0, ++end;
    else if (*end == 'M' || *end == 'm') scale = 1024.0 * 1024.0, ++end;
    else if (*end == 'G' || *end == 'g') scale = 1024.0 * 1024.0 * 1024.0, ++end;
    if (end == env || *end != '\0' || !(v > 0))
        throw std::invalid_argument(std::string("KILN_MAX_HOST_MEMORY=") + env +
                                    ": expected a size in bytes, optionally with a K, M or G suffix (e.g. 6G)");
    return int64_t(v * scale);
}
}  // namespace

int64_t host_memory_resident() {
    std::ifstream f("/proc/self/statm");
    int64_t size = 0, pages = 0;
    if (!(f >> size >> pages)) return 0;
    return pages * int64_t(sysconf(_SC_PAGESIZE));
}

int64_t host_memory_available() {
    int64_t avail = meminfo_available();
    const int64_t c = cap();
    if (c >= 0) {
        const int64_t resident = host_memory_resident();
        const int64_t left = c > resident ? c - resident : 0;
        avail = avail < 0 ? left : std::min(avail, left);
    }
    return avail;
}

std::string format_bytes(int64_t bytes) {
    char buf[32];
    if (bytes >= (int64_t(1) << 30))
        std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(int64_t(1) << 30));
    else if (bytes >= (int64_t(1) << 20))
        std::snprintf(buf, sizeof buf, "%lld MiB", static_cast<long long>(bytes >> 20));
    else
        std::snprintf(buf, sizeof buf, "%lld KiB", static_cast<long long>(bytes >> 10));
    return buf;
}

}  // namespace kiln
