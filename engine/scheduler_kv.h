#pragma once
// The server's KV cache: one fixed region of n_ctx_slot cells per slot, and
// token `pos` of slot s always lives in cell base(s) + pos.
//
// Why not KvCache's lowest-free-cell placement: attention sums a token's
// visible cells in cell order, so a sequence whose cells land in a different
// order (a hole left by a finished request filled by a later position) gets
// different floating-point sums. With a fixed cell per position, a sequence's
// cells are always in position order, and its answer does not depend on what
// else was in the cache or the batch.
//
// Layout (cells): [pad: kPadCells) [slot 0: n_ctx_slot) [slot 1: n_ctx_slot) ...
// The pad cells hold the filler rows the scheduler adds to tiny batches (see
// scheduler.cpp) under sequence id pad_seq(), for one forward pass at a time.
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/kv_storage.h"
#include "formats/ggml_type.h"
#include "kernels/kv_view.h"

namespace kiln {

class SlotKvCache {
public:
    static constexpr int kPadCells = 2;

    // n_slots <= 63: slot s is sequence s, and sequence n_slots is the pad.
    SlotKvCache(int64_t n_layer, int64_t n_kv_dim, int n_slots, int64_t n_ctx_slot, GgmlType type);

    int n_slots() const { return n_slots_; }
    int64_t n_ctx_slot() const { return n_ctx_slot_; }
    int32_t pad_seq() const { return n_slots_; }
    int64_t n_cells() const { return int64_t(cell_pos_.size()); }
    int64_t n_used() const { return n_used_; }
    size_t bytes() const { return bytes_; }

    // The cell of (slot, pos), marked as holding it. pos < n_ctx_slot.
    int32_t occupy(int slot, int32_t pos);
    int32_t occupy_pad(int32_t i);  // i < kPadCells
    // Frees slot's cells from position p0 on.
    void truncate(int slot, int32_t p0);
    void clear_pad();

    KvView view() const;

private:
    int32_t mark(int64_t cell, int32_t pos, int32_t seq);

    GgmlType type_;
    int n_slots_;
    int64_t n_ctx_slot_, n_kv_dim_;
    size_t bytes_ = 0;
    // Left uninitialised: a cell is only read after a forward pass wrote it,
    // so pages of unused slots are never touched.
    KvStorage k_, v_;                    // (n_layer, n_cells, n_kv_dim) each
    std::vector<KvLayerView> layers_;    // (n_layer)
    std::vector<int32_t> cell_pos_;      // (n_cells) -1 = free
    std::vector<uint64_t> cell_seqs_;    // (n_cells)
    std::vector<int32_t> slot_len_;      // (n_slots) cells held from the region's start
    int64_t n_used_ = 0;
};

}  // namespace kiln
