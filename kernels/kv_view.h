#pragma once
// The narrow window through which models and backends see the KV cache.
// engine/kv_cache owns the memory and the per-sequence bookkeeping; a
// backend's attention reads cells through this view and nothing else.
#include <cstdint>
#include <span>

#include "formats/ggml_type.h"

namespace kiln {

// One layer's cache: k and v are (n_cells, n_kv_dim) in KvView::type (F16 or F32),
// n_kv_dim = n_head_kv * head_dim, rows contiguous.
struct KvLayerView {
    void* k = nullptr;
    void* v = nullptr;
};

struct KvView {
    GgmlType type = GgmlType::F16;
    int64_t n_cells = 0;
    int64_t n_kv_dim = 0;
    std::span<const KvLayerView> layers;
    // Per cell: the position it holds (-1 when empty) and the set of sequences
    // that share it (bit s = sequence s; so at most 64 sequences).
    const int32_t* cell_pos = nullptr;
    const uint64_t* cell_seqs = nullptr;
    // Cells at index >= n_scan are all empty: attention looks at [0, n_scan) only.
    int64_t n_scan = 0;
};

// A cell c is visible to a token at position p of sequence s when it is
// occupied, belongs to s, and is not in the token's future.
inline bool kv_cell_visible(const KvView& kv, int64_t c, int32_t p, int32_t s) {
    const int32_t cp = kv.cell_pos[c];
    return cp >= 0 && cp <= p && ((kv.cell_seqs[c] >> s) & 1u);
}

}  // namespace kiln
