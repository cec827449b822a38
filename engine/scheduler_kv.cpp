#include "engine/scheduler_kv.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/kv_cache.h"

namespace kiln {

SlotKvCache::SlotKvCache(int64_t n_layer, int64_t n_kv_dim, int n_slots, int64_t n_ctx_slot, GgmlType type)
    : type_(type), n_slots_(n_slots), n_ctx_slot_(n_ctx_slot), n_kv_dim_(n_kv_dim) {
    if (type != GgmlType::F16 && type != GgmlType::F32) throw std::invalid_argument("KV cache type must be f16 or f32");
    if (n_slots < 1 || n_slots >= KvCache::kMaxSequences)
        throw std::invalid_argument("--parallel must be in [1, " + std::to_string(KvCache::kMaxSequences - 1) + "] (got " +
                                    std::to_string(n_slots) + ")");
    if (n_ctx_slot < 1 || n_ctx_slot > (int64_t(1) << 24) / n_slots)
        throw ContextOverflowError("a KV cache of " + std::to_string(n_slots) + " slots x " + std::to_string(n_ctx_slot) +
                                   " cells is too large; lower -c or --parallel");
    const int64_t n_cells = kPadCells + int64_t(n_slots) * n_ctx_slot;
    const uint64_t elem = type == GgmlType::F16 ? 2 : 4;
    const uint64_t per_layer = uint64_t(n_cells) * uint64_t(n_kv_dim) * elem;
    if (n_layer <= 0 || n_kv_dim <= 0 || n_kv_dim > (int64_t(1) << 24) || n_layer > 4096 ||
        per_layer > (uint64_t(1) << 40) / uint64_t(n_layer))
        throw ContextOverflowError("a KV cache of " + std::to_string(n_cells) + " cells is too large for this model; lower -c or --parallel");
    bytes_ = size_t(per_layer * uint64_t(n_layer));
    k_ = KvStorage(bytes_);
    v_ = KvStorage(bytes_);
    for (int64_t l = 0; l < n_layer; ++l) layers_.push_back({k_.data() + size_t(l) * per_layer, v_.data() + size_t(l) * per_layer});
    cell_pos_.assign(size_t(n_cells), -1);
    cell_seqs_.assign(size_t(n_cells), 0);
    slot_len_.assign(size_t(n_slots), 0);
    bytes_ *= 2;
}

int32_t SlotKvCache::mark(int64_t cell, int32_t pos, int32_t seq) {
    if (cell_pos_[size_t(cell)] < 0) ++n_used_;
    cell_pos_[size_t(cell)] = pos;
    cell_seqs_[size_t(cell)] = uint64_t(1) << seq;
    return int32_t(cell);
}

int32_t SlotKvCache::occupy(int slot, int32_t pos) {
    if (slot < 0 || slot >= n_slots_ || pos < 0 || pos >= n_ctx_slot_)
        throw std::out_of_range("SlotKvCache::occupy: slot " + std::to_string(slot) + " position " + std::to_string(pos));
    slot_len_[size_t(slot)] = std::max(slot_len_[size_t(slot)], pos + 1);
    return mark(kPadCells + int64_t(slot) * n_ctx_slot_ + pos, pos, slot);
}

int32_t SlotKvCache::occupy_pad(int32_t i) {
    if (i < 0 || i >= kPadCells) throw std::out_of_range("SlotKvCache::occupy_pad");
    return mark(i, i, pad_seq());
}

void SlotKvCache::truncate(int slot, int32_t p0) {
    if (slot < 0 || slot >= n_slots_) throw std::out_of_range("SlotKvCache::truncate: slot " + std::to_string(slot));
    const int64_t base = kPadCells + int64_t(slot) * n_ctx_slot_;
    for (int32_t p = std::max(p0, 0); p < slot_len_[size_t(slot)]; ++p) {
        const size_t c = size_t(base + p);
        if (cell_pos_[c] >= 0) --n_used_;
        cell_pos_[c] = -1;
        cell_seqs_[c] = 0;
    }
    slot_len_[size_t(slot)] = std::min(slot_len_[size_t(slot)], std::max(p0, 0));
}

void SlotKvCache::clear_pad() {
    for (int i = 0; i < kPadCells; ++i) {
        if (cell_pos_[size_t(i)] >= 0) --n_used_;
        cell_pos_[size_t(i)] = -1;
        cell_seqs_[size_t(i)] = 0;
    }
}

KvView SlotKvCache::view() const {
    // Attention scans [0, n_scan): stop after the last slot that holds anything.
    int64_t n_scan = kPadCells;
    for (int s = n_slots_ - 1; s >= 0; --s)
        if (slot_len_[size_t(s)] > 0) {
            n_scan = kPadCells + int64_t(s) * n_ctx_slot_ + slot_len_[size_t(s)];
            break;
        }
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
