#pragma once
// How much more host RAM kiln may take before the system would have to kill
// something: the kernel's MemAvailable (free memory plus what it can reclaim,
// the page cache of an mmapped model included), lowered by KILN_MAX_HOST_MEMORY
// (bytes, or with a K, M or G suffix: a cap on kiln's whole resident memory).
// Checked before the allocations that are kiln's own and not evictable: the
// repacked copies of weights and the CPU layers' KV cache. -1 where neither
// /proc/meminfo nor the variable says anything.
#include <cstdint>
#include <string>

namespace kiln {

int64_t host_memory_available();
// This process's resident memory (/proc/self/statm); 0 where unknown.
int64_t host_memory_resident();

// "3.2 GiB", "640 MiB", "72 KiB": for messages.
std::string format_bytes(int64_t bytes);

}  // namespace kiln
