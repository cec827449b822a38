#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/scheduler_kv.h"
#include "kernels/host_memory.h"

using namespace kiln;

// The host K and V of layers that run on a GPU are never written: they must not
// cost RAM (a fully offloaded 7B at 4096 cells would hold 2 GB for nothing).
TEST_CASE("kv cache: host rows take memory only where written and read as zeros") {
    constexpr int64_t kCells = 2048, kDim = 4096;  // 32 MiB of K per layer, F32
    const int64_t before = host_memory_resident();
    KvCache kv(8, kDim, kCells, GgmlType::F32);
    SlotKvCache slots(8, kDim, 2, kCells / 2, GgmlType::F32);
    CHECK(kv.bytes() == size_t(2 * 8 * kCells * kDim * 4));
    CHECK(host_memory_resident() - before < (16 << 20));
    const KvView v = kv.view();
    const float* k7 = static_cast<const float*>(v.layers[7].k);
    CHECK(k7[0] == 0.0f);
    CHECK(k7[kCells * kDim - 1] == 0.0f);
    // The measurement sees memory that is there: writing one layer's K commits it.
    std::memset(v.layers[0].k, 1, size_t(kCells * kDim * 4));
    CHECK(host_memory_resident() - before >= (30 << 20));
}

TEST_CASE("kv cache: claim, per-sequence remove, copy, keep") {
    KvCache kv(2, 8, 10, GgmlType::F16);
    CHECK(kv.n_cells() == 10);
    CHECK(kv.bytes() == 2u * 2u * 10u * 8u * 2u);
    std::vector<int32_t> cells(4);
    const std::vector<int32_t> pos{0, 1, 2, 3}, seq0{0, 0, 0, 0}, seq1{1, 1, 1, 1};
    kv.claim(pos, seq0, cells);
    CHECK(cells == std::vector<int32_t>{0, 1, 2, 3});
    CHECK(kv.seq_pos_max(0) == 3);
    CHECK(kv.seq_pos_max(1) == -1);

    kv.seq_cp(0, 1, 0, 2);  // seq 1 shares the first two tokens
    CHECK(kv.n_used() == 4);
    CHECK(kv.seq_pos_max(1) == 1);
    CHECK(kv.cell_seqs(0) == 3u);

    kv.seq_rm(0, 1, -1);  // seq 0 keeps position 0 only; cell 1 stays for seq 1
    CHECK(kv.n_used() == 2);
    CHECK(kv.seq_pos_max(0) == 0);
    CHECK(kv.cell_pos(1) == 1);
    CHECK(kv.cell_seqs(1) == 2u);
    CHECK(kv.cell_pos(2) == -1);

    // Freed cells are reused lowest first.
    std::vector<int32_t> c2(2);
    kv.claim(std::vector<int32_t>{2, 3}, std::vector<int32_t>{1, 1}, c2);
    CHECK(c2 == std::vector<int32_t>{2, 3});
    CHECK(kv.seq_pos_max(1) == 3);

    KvView v = kv.view();
    CHECK(v.n_scan == 4);
    CHECK(v.layers.size() == 2);
    CHECK(kv_cell_visible(v, 0, 5, 1));   // shared position 0
    CHECK(!kv_cell_visible(v, 3, 2, 1));  // position 3 is in the future of position 2
    CHECK(!kv_cell_visible(v, 2, 5, 0));  // seq 1's cell is not seq 0's

    kv.seq_keep(1);
    CHECK(kv.seq_pos_max(0) == -1);
    CHECK(kv.n_used() == 4);
    kv.clear();
    CHECK(kv.n_used() == 0);
    CHECK(kv.view().n_scan == 0);
}

TEST_CASE("kv cache: a claim that does not fit changes nothing") {
    KvCache kv(1, 4, 3, GgmlType::F32);
    std::vector<int32_t> cells(2);
    kv.claim(std::vector<int32_t>{0, 1}, std::vector<int32_t>{0, 0}, cells);
    std::vector<int32_t> more(2);
    CHECK_THROWS_AS(kv.claim(std::vector<int32_t>{2, 3}, std::vector<int32_t>{0, 0}, more), ContextOverflowError);
    CHECK(kv.n_used() == 2);
    CHECK(kv.cell_pos(2) == -1);
    CHECK_THROWS_AS(kv.claim(std::vector<int32_t>{2}, std::vector<int32_t>{64}, std::span<int32_t>(more).first(1)),
                    std::invalid_argument);
    CHECK_THROWS_AS(KvCache(1, 4, 3, GgmlType::Q8_0), std::invalid_argument);
}
