// Device layout of weight blocks (cuda_ops.h: device_bytes).
#include <cstring>

#include "formats/quant_traits.h"
#include "kernels/cuda/cuda_ops.h"

namespace kiln::cuda {

namespace {
size_t device_block_bytes(GgmlType type) {
    switch (type) {
        case GgmlType::Q3_K: return kQ3KDeviceBytes;
        case GgmlType::Q6_K: return kQ6KDeviceBytes;
        default: return quant_traits(type).block_bytes;
    }
}
}  // namespace

size_t device_bytes(GgmlType type, int64_t n_elements) {
    return size_t(n_elements / quant_traits(type).block_size) * device_block_bytes(type);
}

void pad_blocks_for_device(GgmlType type, const uint8_t* src, int64_t n_blocks, uint8_t* dst) {
    const size_t from = quant_traits(type).block_bytes, to = device_block_bytes(type);
    for (int64_t b = 0; b < n_blocks; ++b) {
        std::memcpy(dst + size_t(b) * to, src + size_t(b) * from, from);
        std::memset(dst + size_t(b) * to + from, 0, to - from);
    }
}

}  // namespace kiln::cuda
