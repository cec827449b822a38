#include <atomic>

#include "kernels/cuda/cuda_ops.h"

namespace kiln::cuda {

namespace {
std::atomic<bool> g_pdl_launches{false};
}  // namespace

void set_pdl_launches(bool on) { g_pdl_launches.store(on, std::memory_order_relaxed); }
bool pdl_launches() { return g_pdl_launches.load(std::memory_order_relaxed); }

}  // namespace kiln::cuda
