#pragma once
// The cells each query token may see, as one index range per token, so that
// attention_decode.glsl's chunk loop starts at the token's first such cell and
// stops after its last: a causal prompt of n tokens then reads about half the
// key and value rows it would read over [0, n_scan), and a slot's token in a
// server batch skips the other slots' cells around its own. Every range holds
// all the cells its token sees, for any order of cells (a cache whose cells
// were freed and reused holds positions out of order): it comes from the
// cells' positions and sequence bits, never from the token's position alone.
// Cells inside a range may still be invisible; the shader's mask drops those.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/kv_view.h"

namespace kiln::vk {

class AttentionCellRanges {
public:
    // For token t (position pos[t] of sequence seq[t], seq in [0, 64)), out[2t] = the
    // first cell and out[2t + 1] = one past the last cell of its range; {0, 0} when
    // the range is empty. A sequence with tokens at two or more positions in the batch
    // (a prompt, causal) gets per token exactly its first to its last visible cell:
    // O(n_scan * sequences per cell + n_tok log n_scan). A sequence with one position
    // (decode; the server's batch of one token per slot) gets the first to the last
    // cell holding the sequence's bit, a scan from either end that stops at the cells
    // it looks for: at once where the sequence's cells end the cache, ~n_scan cheap
    // steps for slots laid side by side. The scratch is kept between calls, so
    // steady-state calls do not allocate.
    void compute(const KvView& kv, std::span<const int32_t> pos, std::span<const int32_t> seq, int32_t* out);

private:
    // Per sequence, its first and one past its last cell with its bit (-1: none).
    std::array<int32_t, 64> first_{}, past_{};
    // The occupied cells of each causal sequence in index order (offsets per sequence
    // in start_), with the running minimum of their positions from the front
    // (prefix_min_) and from the back (suffix_min_).
    std::vector<uint32_t> start_;
    std::vector<int32_t> cells_, prefix_min_, suffix_min_;

    void sequence_ends(const KvView& kv, uint64_t asked);
    void causal_lists(const KvView& kv, uint64_t causal);
};

}  // namespace kiln::vk
