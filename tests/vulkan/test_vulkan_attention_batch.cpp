// Batches of query tokens (5..16, ~100: the server's several slots, prompts on
// devices without cooperative matrices) through attention_decode.glsl against
// the CPU reference, and the visible cell ranges that cut its chunk loop
// against a brute-force scan.
#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cpu/ops_ref.h"
#include "kernels/vulkan/attention_cells.h"
#include "vulkan_test_util.h"

using namespace kiln;
using namespace kiln::test;

namespace {

// 1100 cells: the two sequences of HostKv::hold_two_sequences in cells 0..239,
// then sequence 0's positions 200..299 in cells 600..699 in reverse order (a
// cache whose cells were reused: cell 600 holds 299), the rest empty.
HostKv batch_cache(GgmlType t, int64_t dim) {
    HostKv kv(t, 1100, dim, 1);
    kv.hold_two_sequences();
    for (int64_t c = 600; c < 700; ++c) {
        kv.cell_pos[size_t(c)] = int32_t(899 - c);
        kv.cell_seqs[size_t(c)] = 1u;
    }
    return kv;
}

// n_tok tokens in no particular order: about two thirds of sequence 0 at positions
// spread over 0..299 (some see only the first cells, some reach the reversed block),
// the rest of sequence 1 at 80..139, and the last of sequence 7, which no cell holds.
void batch_tokens(int64_t n_tok, std::vector<int32_t>& pos, std::vector<int32_t>& seq) {
    const int64_t n1 = (n_tok - 1) / 3;
    pos.clear();
    seq.clear();
    for (int64_t i = 0; i + 1 < n_tok; ++i) {
        const bool s1 = i % 3 == 1 && i / 3 < n1;
        seq.push_back(s1 ? 1 : 0);
        pos.push_back(int32_t(s1 ? 139 - (i * 5) % 60 : 299 - (i * 37) % 300));
    }
    pos.push_back(5);
    seq.push_back(7);
}

// One batch over n_scan cells against the reference; q read from a wider buffer at
// column 2 (offset and stride off 16 bytes). `shader` is the one expected to run.
void check_batch(vk::VulkanBackend& vb, const HostKv& kv, const AttentionParams& p, int64_t n_tok, int64_t n_scan,
                 const std::string& shader, const std::string& what) {
    const int64_t cols = int64_t(p.n_head) * p.head_dim;
    std::vector<int32_t> pos, seq;
    batch_tokens(n_tok, pos, seq);
    auto q = random_floats(size_t(n_tok * cols), 43 + uint32_t(n_tok), -3.0f, 3.0f);
    const KvView view = kv.view(n_scan);
    std::vector<float> want(q.size());
    ref::attention(host_act(q, n_tok, cols), view, 0, p, pos, seq, host_act(want, n_tok, cols));
    auto dq = device_act(vb, n_tok, cols + 6);
    Act qa = dq.act();
    qa.data += 2;
    qa.n_cols = cols;
    vb.write_act(qa, q.data());
    auto dout = device_act(vb, n_tok, cols);
    const uint64_t ran = dispatches(vb, shader);
    vb.attention(qa, view, 0, p, pos, seq, dout.act());
    const auto got = read(vb, dout.act());
    check_close(got, want, 1e-5f, 1e-4f, what);
    CHECK_MESSAGE(dispatches(vb, shader) == ran + 1, what << ": " << shader << " did not run");
    for (int64_t i = (n_tok - 1) * cols; i < n_tok * cols; ++i) CHECK(got[size_t(i)] == 0.0f);  // sees nothing
}

}  // namespace

TEST_CASE("vulkan attention: batches of 5..16 and 100 tokens through attention_decode: GQA, two sequences, reused cells, splits, F16/F32, both reductions") {
    for (bool sg : {true, false}) {
        std::unique_ptr<vk::VulkanBackend> vb;
        {
            ProfileVariable profile("1");
            // Without cooperative matrices, as on AMD, Intel and lavapipe: every batch takes attention_decode.
            vb = vulkan_backend(sg, false, false);
        }
        if (!vb) return;
        for (GgmlType t : {GgmlType::F16, GgmlType::F32})
            // 20: F16 rows off 16 bytes (attention_decode_rows), F32 rows on them.
            for (int head_dim : {20, 40, 64, 128}) {
                const AttentionParams p{8, 2, head_dim, 1.0f / std::sqrt(float(head_dim))};
                const HostKv kv = batch_cache(t, int64_t(p.n_head_kv) * head_dim);
                store_random_kv(*vb, kv.view(kv.n_cells), 0, 41 + uint32_t(head_dim));
                const bool rows16 = head_dim % (t == GgmlType::F16 ? 8 : 4) == 0;
                const std::string shader = rows16 ? "attention_decode" : "attention_decode_rows";
                // 1100 cells: 5 and 16 tokens split the cells over workgroups (8 x 5 and 8 x 16
                // heads leave the GPU idle), 100 do not; 250: one split, cells past 240 empty.
                for (int64_t n_scan : {int64_t(250), int64_t(1100)})
                    for (int64_t n_tok : {5, 7, 12, 16, 100}) {
                        if (n_scan == 250 && n_tok != 7 && n_tok != 100) continue;
                        check_batch(*vb, kv, p, n_tok, n_scan, shader,
                                    std::string(sg ? "subgroups" : "shared memory") + (t == GgmlType::F16 ? " f16" : " f32") +
                                        " head_dim " + std::to_string(head_dim) + " n_scan " + std::to_string(n_scan) +
                                        " n_tok " + std::to_string(n_tok));
                    }
            }
    }
}

TEST_CASE("vulkan attention: batches on a device with cooperative matrices take attention_decode below 16 tokens and for F32 caches") {
    std::unique_ptr<vk::VulkanBackend> vb;
    {
        ProfileVariable profile("1");
        vb = vulkan_backend();
    }
    if (!vb) return;
    const AttentionParams p{8, 2, 64, 0.125f};
    for (GgmlType t : {GgmlType::F16, GgmlType::F32}) {
        const HostKv kv = batch_cache(t, int64_t(p.n_head_kv) * p.head_dim);
        store_random_kv(*vb, kv.view(kv.n_cells), 0, 7);
        check_batch(*vb, kv, p, 15, 1100, "attention_decode", "15 tokens");
        if (t == GgmlType::F32) check_batch(*vb, kv, p, 100, 1100, "attention_decode", "100 tokens, F32 cache");
    }
}

TEST_CASE("attention cell ranges: every visible cell inside its token's range for any cell order, exact for causal sequences") {
    std::mt19937 rng(5);
    vk::AttentionCellRanges ranges;
    for (int round = 0; round < 300; ++round) {
        const int64_t n_cells = 1 + int64_t(rng() % 300);
        HostKv kv(GgmlType::F32, n_cells, 4, 1);
        for (int64_t c = 0; c < n_cells; ++c) {
            if (rng() % 5 == 0) continue;  // empty
            kv.cell_pos[size_t(c)] = int32_t(rng() % 200);
            kv.cell_seqs[size_t(c)] = (uint64_t(1) << (rng() % 4)) | (rng() % 3 == 0 ? uint64_t(1) << 63 : 0);
        }
        for (int64_t c = 0; c < n_cells; ++c)  // some empty cells keep a stale sequence bit
            if (kv.cell_pos[size_t(c)] < 0 && rng() % 2 == 0) kv.cell_seqs[size_t(c)] = 1u;
        const int64_t n_scan = int64_t(rng() % uint32_t(n_cells + 1));
        const KvView view = kv.view(n_scan);
        const size_t n_tok = 1 + rng() % 20;
        // A third of the rounds: one position per sequence (decode steps of several slots).
        const bool one_position = round % 3 == 0;
        std::vector<int32_t> pos(n_tok), seq(n_tok), got(2 * n_tok);
        for (size_t t = 0; t < n_tok; ++t) {
            const uint32_t r = rng() % 6;
            seq[t] = r < 4 ? int32_t(r) : (r == 4 ? 63 : 9);  // 9: no cell holds it
            pos[t] = one_position ? 150 + seq[t] % 7 : int32_t(rng() % 220);
        }
        ranges.compute(view, pos, seq, got.data());
        for (size_t t = 0; t < n_tok; ++t) {
            const std::string what = "round " + std::to_string(round) + " token " + std::to_string(t);
            bool causal = false;
            for (size_t u = 0; u < n_tok; ++u) causal |= seq[u] == seq[t] && pos[u] != pos[t];
            // Causal: the first to the last visible cell; else the first to the last
            // cell with the sequence's bit (empty or not).
            int32_t first = -1, last = -1;
            for (int64_t c = 0; c < n_scan; ++c)
                if (causal ? kv_cell_visible(view, c, pos[t], seq[t]) : ((view.cell_seqs[c] >> seq[t]) & 1u) != 0) {
                    if (first < 0) first = int32_t(c);
                    last = int32_t(c);
                }
            CHECK_MESSAGE(got[2 * t] == (first < 0 ? 0 : first), what);
            CHECK_MESSAGE(got[2 * t + 1] == (first < 0 ? 0 : last + 1), what);
            for (int64_t c = 0; c < n_scan; ++c)
                if (kv_cell_visible(view, c, pos[t], seq[t]))
                    CHECK_MESSAGE((c >= got[2 * t] && c < got[2 * t + 1]), what << ": visible cell " << c << " outside");
        }
    }
}
