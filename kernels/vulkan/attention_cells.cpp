#include "kernels/vulkan/attention_cells.h"

#include <algorithm>
#include <bit>

namespace kiln::vk {

void AttentionCellRanges::sequence_ends(const KvView& kv, uint64_t asked) {
    // Sequence bits alone (an empty cell may keep stale ones): a range a little wider
    // than the occupied cells is still correct, and the scans stay tight loops.
    first_.fill(-1);
    past_.fill(-1);
    const uint64_t* bits = kv.cell_seqs;
    uint64_t need = asked;
    for (int64_t c = 0; need != 0; ++c) {
        while (c < kv.n_scan && !(bits[c] & need)) ++c;
        if (c == kv.n_scan) break;
        for (uint64_t b = bits[c] & need; b != 0; b &= b - 1) first_[size_t(std::countr_zero(b))] = int32_t(c);
        need &= ~bits[c];
    }
    need = asked;
    for (int64_t c = kv.n_scan - 1; need != 0; --c) {
        while (c >= 0 && !(bits[c] & need)) --c;
        if (c < 0) break;
        for (uint64_t b = bits[c] & need; b != 0; b &= b - 1) past_[size_t(std::countr_zero(b))] = int32_t(c + 1);
        need &= ~bits[c];
    }
}

void AttentionCellRanges::causal_lists(const KvView& kv, uint64_t causal) {
    const auto occupied = [&kv](int64_t c) { return kv.cell_pos[c] >= 0 ? kv.cell_seqs[c] : 0; };
    start_.assign(65, 0);
    for (int64_t c = 0; c < kv.n_scan; ++c)
        for (uint64_t b = occupied(c) & causal; b != 0; b &= b - 1) ++start_[size_t(std::countr_zero(b)) + 1];
    for (size_t s = 1; s < start_.size(); ++s) start_[s] += start_[s - 1];
    const size_t total = start_[64];
    cells_.resize(total);
    prefix_min_.resize(total);
    suffix_min_.resize(total);
    // Fill in cell order: start_[s] walks to the end of sequence s's run, then moves back.
    for (int64_t c = 0; c < kv.n_scan; ++c)
        for (uint64_t b = occupied(c) & causal; b != 0; b &= b - 1) {
            const uint32_t i = start_[size_t(std::countr_zero(b))]++;
            cells_[i] = int32_t(c);
            prefix_min_[i] = suffix_min_[i] = kv.cell_pos[c];
        }
    for (size_t s = 64; s > 0; --s) start_[s] = start_[s - 1];
    start_[0] = 0;
    for (size_t s = 0; s < 64; ++s) {
        const uint32_t b = start_[s], e = start_[s + 1];
        for (uint32_t i = b + 1; i < e; ++i) prefix_min_[i] = std::min(prefix_min_[i], prefix_min_[i - 1]);
        for (uint32_t i = e > b ? e - 1 : b; i > b; --i) suffix_min_[i - 1] = std::min(suffix_min_[i - 1], suffix_min_[i]);
    }
}

void AttentionCellRanges::compute(const KvView& kv, std::span<const int32_t> pos, std::span<const int32_t> seq,
                                  int32_t* out) {
    // Sequences asked for, and those with tokens at two or more positions.
    uint64_t asked = 0, causal = 0;
    std::array<int32_t, 64> seen_pos;
    for (size_t t = 0; t < pos.size(); ++t) {
        const uint64_t bit = uint64_t(1) << seq[t];
        if (!(asked & bit)) seen_pos[size_t(seq[t])] = pos[t];
        else if (seen_pos[size_t(seq[t])] != pos[t]) causal |= bit;
        asked |= bit;
    }
    if (asked & ~causal) sequence_ends(kv, asked & ~causal);
    if (causal) causal_lists(kv, causal);
    for (size_t t = 0; t < pos.size(); ++t) {
        const size_t s = size_t(seq[t]);
        if (!(causal >> s & 1)) {
            out[2 * t] = first_[s] < 0 ? 0 : first_[s];
            out[2 * t + 1] = first_[s] < 0 ? 0 : past_[s];
            continue;
        }
        const uint32_t b = start_[s], e = start_[s + 1];
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
