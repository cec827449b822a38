#pragma once
// The KV cache: per layer, K and V rows for n_cells cells, each cell holding
// one token of one or more sequences (a shared prefix copied with seq_cp
// occupies one cell). Bookkeeping per cell (position, sequence set) is what
// continuous batching needs: remove / keep / copy ranges per sequence.
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "engine/kv_cache_error.h"
#include "engine/kv_storage.h"
#include "formats/ggml_type.h"
#include "kernels/kv_view.h"

namespace kiln {


class KvCache {
public:
    static constexpr int kMaxSequences = 64;  // the width of KvView::cell_seqs

    // (n_layer) x K and V of (n_cells, n_kv_dim) in `type` (F16 or F32).
    KvCache(int64_t n_layer, int64_t n_kv_dim, int64_t n_cells, GgmlType type);

    int64_t n_cells() const { return int64_t(cell_pos_.size()); }
    int64_t n_used() const { return n_used_; }
    GgmlType type() const { return type_; }
    size_t bytes() const { return k_.size() + v_.size(); }  // address space; RAM only where written

    // Claims a free cell for each token (pos[i] of seq[i]) and marks it; the
    // chosen cells go to cells_out. Throws ContextOverflowError and changes
    // nothing when there are fewer free cells than tokens.
    void claim(std::span<const int32_t> pos, std::span<const int32_t> seq, std::span<int32_t> cells_out);

    // Removes seq's tokens with position in [p0, p1) (p1 < 0: to the end); seq < 0: every sequence.
    void seq_rm(int32_t seq, int32_t p0, int32_t p1);
    // Removes every sequence but seq.
    void seq_keep(int32_t seq);
    // Makes dst share src's cells with position in [p0, p1) (p1 < 0: to the end).
    void seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1);
    void clear();
    // Largest position held for seq, or -1 when it holds nothing.
    int32_t seq_pos_max(int32_t seq) const;
    int32_t cell_pos(int64_t cell) const { return cell_pos_[size_t(cell)]; }
    uint64_t cell_seqs(int64_t cell) const { return cell_seqs_[size_t(cell)]; }

    // The view handed to the model for one forward pass (valid until the next mutation).
    KvView view();

private:
    void check_seq(int32_t seq, const char* what) const;
    void free_cell(size_t c);

    GgmlType type_;
    int64_t n_layer_, n_kv_dim_;
    KvStorage k_, v_;                     // (n_layer, n_cells, n_kv_dim) each
    std::vector<int32_t> cell_pos_;       // (n_cells) -1 = free
    std::vector<uint64_t> cell_seqs_;     // (n_cells) bit s = sequence s
    std::vector<KvLayerView> layers_;     // (n_layer)
    int64_t n_used_ = 0;
};

}  // namespace kiln
