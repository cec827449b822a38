#pragma once
// The cells each query token can see, as one index range per token, so that
// attention_decode.comp's chunk loop starts at the token's first visible cell
// and stops after its last: a causal prompt of n tokens then reads about half
// the key and value rows it would read over [0, n_scan), and a slot's token in
// a server batch skips the other slots' cells around its own. The range is
// exact for any order of cells (a cache whose cells were freed and reused
// holds positions out of order): it is computed from the cells' positions and
// sequence bits, not assumed from the token's position. Cells inside a range
// may still be invisible; the shader's mask drops those.
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/kv_view.h"

namespace kiln::vk {

class AttentionCellRanges {
public:
    // For token t (position pos[t] of sequence seq[t], seq in [0, 64)), out[2t] = its
    // first visible cell and out[2t + 1] = one past its last; {0, 0} when it sees none.
    // Up to kScanTokens tokens: scans from both ends of the cells, O(1) a token where
    // its cells are in position order; more: O(n_scan * sequences per cell + n_tok log
    // n_scan), whatever the order. The scratch is kept between calls, so steady-state
    // calls do not allocate.
    void compute(const KvView& kv, std::span<const int32_t> pos, std::span<const int32_t> seq, int32_t* out);

private:
    static constexpr size_t kScanTokens = 4;
    // The occupied cells of each asked-for sequence in index order (offsets per
    // sequence in start_), with the running minimum of their positions from the
    // front (prefix_min_) and from the back (suffix_min_).
    std::vector<uint32_t> start_;
    std::vector<int32_t> cells_, prefix_min_, suffix_min_;
};

}  // namespace kiln::vk
