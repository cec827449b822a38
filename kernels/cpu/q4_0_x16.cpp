#include "kernels/cpu/q4_0_x16.h"

#include <cstring>

#include "formats/quant_blocks.h"

namespace kiln::cpu {

void repack_q4_0_x16(const uint8_t* src, size_t src_stride, int64_t n_rows, int64_t n_in, int64_t g0, int64_t g1,
                     uint8_t* dst) {
    const int64_t nb = n_in / 32;
    const size_t group_bytes = q4_0_x16_group_bytes(n_in);
    for (int64_t g = g0; g < g1; ++g) {
        uint8_t* quants = dst + size_t(g) * group_bytes;
        uint8_t* scales = quants + size_t(nb) * 256;
        std::memset(quants, 0, group_bytes);
        for (int r = 0; r < kQ4_0GroupRows; ++r) {
            const int64_t row = g * kQ4_0GroupRows + r;
            if (row >= n_rows) break;
            const auto* blocks = reinterpret_cast<const block_q4_0*>(src + size_t(row) * src_stride);
            for (int64_t b = 0; b < nb; ++b) {
                for (int k = 0; k < 4; ++k) std::memcpy(quants + 256 * b + 64 * k + 4 * r, blocks[b].qs + 4 * k, 4);
                std::memcpy(scales + 32 * b + 2 * r, &blocks[b].d, 2);
            }
        }
    }
}

}  // namespace kiln::cpu
