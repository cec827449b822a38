#include "engine/kv_cache.h"

#include <algorithm>
#include <string>

namespace kiln {

KvCache::KvCache(int64_t n_layer, int64_t n_kv_dim, int64_t n_cells, GgmlType type)
    : type_(type), n_layer_(n_layer), n_kv_dim_(n_kv_dim) {
    if (type != GgmlType::F16 && type != GgmlType::F32)
        throw std::invalid_argument("KV cache type must be f16 or f32");
    if (n_layer <= 0 || n_kv_dim <= 0 || n_cells <= 0 || n_cells > (int64_t(1) << 24))
        throw std::invalid_argument("KV cache needs positive sizes and at most 2^24 cells (got " + std::to_string(n_cells) + ")");
    const uint64_t elem = type == GgmlType::F16 ? 2 : 4;
    // Each factor is bounded (n_cells <= 2^24, n_layer/n_kv_dim come from validated hparams);
    // check the product against a ceiling anyway before allocating.
    const uint64_t per_layer = uint64_t(n_cells) * uint64_t(n_kv_dim) * elem;
    if (n_kv_dim > (int64_t(1) << 24) || n_layer > 4096 || per_layer > (uint64_t(1) << 40) / uint64_t(n_layer))
        throw ContextOverflowError("a KV cache of " + std::to_string(n_cells) + " cells is too large for this model; lower -c");
    k_ = KvStorage(size_t(per_layer * uint64_t(n_layer)));
    v_ = KvStorage(size_t(per_layer * uint64_t(n_layer)));
    cell_pos_.assign(size_t(n_cells), -1);
    cell_seqs_.assign(size_t(n_cells), 0);
    for (int64_t l = 0; l < n_layer; ++l)
        layers_.push_back({k_.data() + size_t(l) * per_layer, v_.data() + size_t(l) * per_layer});
}

void KvCache::check_seq(int32_t seq, const char* what) const {
    if (seq < 0 || seq >= kMaxSequences)
        throw std::invalid_argument(std::string(what) + ": sequence id " + std::to_string(seq) + " outside [0, 64)");
}

void KvCache::free_cell(size_t c) {
    cell_pos_[c] = -1;
    cell_seqs_[c] = 0;
    --n_used_;
}

void KvCache::claim(std::span<const int32_t> pos, std::span<const int32_t> seq, std::span<int32_t> cells_out) {
    if (pos.size() != seq.size() || cells_out.size() != pos.size())
        throw std::invalid_argument("KvCache::claim: pos, seq and cells must have one entry per token");
    for (int32_t s : seq) check_seq(s, "KvCache::claim");
    for (int32_t p : pos)
        if (p < 0) throw std::invalid_argument("KvCache::claim: negative position " + std::to_string(p));
    const int64_t n_free = n_cells() - n_used_;
    if (int64_t(pos.size()) > n_free)
        throw ContextOverflowError(std::to_string(pos.size()) + " tokens do not fit in the KV cache: " +
                                   std::to_string(n_free) + " of " + std::to_string(n_cells()) + " cells are free");
    // Lowest free cells first keeps the occupied range (what attention scans) short.
    size_t c = 0;
    for (size_t i = 0; i < pos.size(); ++i) {
        while (cell_pos_[c] >= 0) ++c;
        cell_pos_[c] = pos[i];
        cell_seqs_[c] = uint64_t(1) << seq[i];
        cells_out[i] = int32_t(c);
        ++n_used_;
    }
}

void KvCache::seq_rm(int32_t seq, int32_t p0, int32_t p1) {
    if (seq >= 0) check_seq(seq, "KvCache::seq_rm");
    const uint64_t mask = seq < 0 ? ~uint64_t(0) : uint64_t(1) << seq;
    for (size_t c = 0; c < cell_pos_.size(); ++c) {
        const int32_t p = cell_pos_[c];
        if (p < 0 || p < p0 || (p1 >= 0 && p >= p1) || !(cell_seqs_[c] & mask)) continue;
        cell_seqs_[c] &= ~mask;
        if (cell_seqs_[c] == 0) free_cell(c);
    }
}

void KvCache::seq_keep(int32_t seq) {
    check_seq(seq, "KvCache::seq_keep");
    const uint64_t bit = uint64_t(1) << seq;
    for (size_t c = 0; c < cell_pos_.size(); ++c) {
        if (cell_pos_[c] < 0) continue;
        cell_seqs_[c] &= bit;
        if (cell_seqs_[c] == 0) free_cell(c);
    }
}

void KvCache::seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    check_seq(src, "KvCache::seq_cp");
    check_seq(dst, "KvCache::seq_cp");
    const uint64_t sbit = uint64_t(1) << src, dbit = uint64_t(1) << dst;
    for (size_t c = 0; c < cell_pos_.size(); ++c) {
        const int32_t p = cell_pos_[c];
        if (p < 0 || p < p0 || (p1 >= 0 && p >= p1)) continue;
        if (cell_seqs_[c] & sbit) cell_seqs_[c] |= dbit;
    }
}

void KvCache::clear() {
    std::fill(cell_pos_.begin(), cell_pos_.end(), -1);
    std::fill(cell_seqs_.begin(), cell_seqs_.end(), 0);
    n_used_ = 0;
}

int32_t KvCache::seq_pos_max(int32_t seq) const {
    check_seq(seq, "KvCache::seq_pos_max");
    int32_t m = -1;
    for (size_t c = 0; c < cell_pos_.size(); ++c)
        if (cell_pos_[c] >= 0 && ((cell_seqs_[c] >> seq) & 1u)) m = std::max(m, cell_pos_[c]);
    return m;
}

KvView KvCache::view() {
    int64_t n_scan = n_cells();
    while (n_scan > 0 && cell_pos_[size_t(n_scan - 1)] < 0) --n_scan;
    KvView v;
    v.type = type_;
    v.n_cells = n_cells();
    v.n_kv_dim = n_kv_dim_;
    v.layers = layers_;
    v.cell_pos = cell_pos_.data();
    v.cell_seqs = cell_seqs_.data();
    v.n_scan = n_scan;
    return v;
}

}  // namespace kiln
