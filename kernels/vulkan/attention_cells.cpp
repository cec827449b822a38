#include "kernels/vulkan/attention_cells.h"

#include <algorithm>
#include <bit>

namespace kiln::vk {

void AttentionCellRanges::compute(const KvView& kv, std::span<const int32_t> pos, std::span<const int32_t> seq,
                                  int32_t* out) {
    // A few tokens (decode): each token's scans from either end stop at its first and
    // last visible cells, at once in the usual cache (a sequence's cells in position
    // order, the token's own cell last), where the pass below would visit every cell
    // once per layer and step.
    if (pos.size() <= kScanTokens) {
        for (size_t t = 0; t < pos.size(); ++t) {
            int64_t first = 0;
            while (first < kv.n_scan && !kv_cell_visible(kv, first, pos[t], seq[t])) ++first;
            int64_t past = kv.n_scan;
            while (past > first && !kv_cell_visible(kv, past - 1, pos[t], seq[t])) --past;
            out[2 * t] = first < past ? int32_t(first) : 0;
            out[2 * t + 1] = first < past ? int32_t(past) : 0;
        }
        return;
    }
    uint64_t asked = 0;
    for (int32_t s : seq) asked |= uint64_t(1) << s;
    start_.assign(65, 0);
    for (int64_t c = 0; c < kv.n_scan; ++c)
        if (kv.cell_pos[c] >= 0)
            for (uint64_t bits = kv.cell_seqs[c] & asked; bits != 0; bits &= bits - 1) ++start_[std::countr_zero(bits) + 1];
    for (size_t s = 1; s < start_.size(); ++s) start_[s] += start_[s - 1];
    const size_t total = start_[64];
    cells_.resize(total);
    prefix_min_.resize(total);
    suffix_min_.resize(total);
    // Fill in cell order: start_[s] walks to the end of sequence s's run, then moves back.
    for (int64_t c = 0; c < kv.n_scan; ++c)
        if (kv.cell_pos[c] >= 0)
            for (uint64_t bits = kv.cell_seqs[c] & asked; bits != 0; bits &= bits - 1) {
                const uint32_t i = start_[std::countr_zero(bits)]++;
                cells_[i] = int32_t(c);
                prefix_min_[i] = suffix_min_[i] = kv.cell_pos[c];
            }
    for (size_t s = 64; s > 0; --s) start_[s] = start_[s - 1];
    start_[0] = 0;
    for (size_t s = 0; s < 64; ++s) {
        const uint32_t b = start_[s], e = start_[s + 1];
        for (uint32_t i = b + 1; i < e; ++i) prefix_min_[i] = std::min(prefix_min_[i], prefix_min_[i - 1]);
        for (uint32_t i = e - (e > b ? 1 : 0); i > b; --i) suffix_min_[i - 1] = std::min(suffix_min_[i - 1], suffix_min_[i]);
    }
    for (size_t t = 0; t < pos.size(); ++t) {
        const uint32_t b = start_[size_t(seq[t])], e = start_[size_t(seq[t]) + 1];
        const int32_t p = pos[t];
        // The first cell whose position is <= p: the prefix minima fall, so the cells
        // before it are those whose prefix minimum is still > p. The last: the suffix
        // minima rise, so it is the one before the first whose suffix minimum is > p.
        const auto first = std::partition_point(prefix_min_.begin() + b, prefix_min_.begin() + e,
                                                 [p](int32_t m) { return m > p; });
        const auto past = std::partition_point(suffix_min_.begin() + b, suffix_min_.begin() + e,
                                               [p](int32_t m) { return m <= p; });
        if (first == prefix_min_.begin() + e) {
            out[2 * t] = out[2 * t + 1] = 0;
            continue;
        }
        out[2 * t] = cells_[size_t(first - prefix_min_.begin())];
        out[2 * t + 1] = cells_[size_t(past - suffix_min_.begin()) - 1] + 1;
    }
}

}  // namespace kiln::vk
