// Decode attention (attention_decode.glsl, 1..4 query tokens) against the CPU
// reference: contexts of one chunk, of several chunks in one workgroup, and
// long enough to split over workgroups and merge (attention_merge.comp), with
// empty cells, cells of another sequence, cells past a token's position,
// splits a token sees nothing of, a split whose first chunk it sees nothing
// of, a token that sees nothing at all, GQA, head sizes with idle invocations
// (40) up to 256, F16 and F32 caches, both reductions, and on the integer-dot
// path the output's q8 copy. The profile says which shaders ran, so each case
// is known to take the path it names.
#include <cmath>
#include <map>

#include "kernels/cpu/ops_ref.h"
#include "vulkan_test_util.h"

using namespace kiln;
using namespace kiln::test;

namespace {

// One cache layout over 1500 cells (below), queried by 1, 4 and 2 tokens over
// 50, 200 and 1500 of its cells, against the reference; `config` names the backend.
void check_decode_attention(vk::VulkanBackend& vb, GgmlType t, int head_dim, const std::string& config) {
    const AttentionParams p{8, 2, head_dim, 1.0f / std::sqrt(float(head_dim))};
    const int64_t dim = p.n_head_kv * p.head_dim, n_cells = 1500, cols = int64_t(p.n_head) * head_dim;
    HostKv kv(t, n_cells, dim, 1);
    // Sequence 0: positions 0..255 in cells 0..255 (cell 7 empty), 256..687 in
    // cells 768..1199; sequence 1: positions 0..511 in cells 256..767; sequence 6:
    // cells 130..140 (shared with sequence 0) and 1300..1310 (positions 900..910);
    // the other cells empty. Split over 6 workgroups of 256 cells, sequence 0
    // sees nothing of splits 1, 2 and 5, sequence 1 nothing but splits 1 and 2,
    // and sequence 6 only the second chunk of split 0 and a piece of split 5.
    for (int64_t c = 0; c < 1200; ++c) {
        const bool s1 = c >= 256 && c < 768;
        kv.cell_pos[size_t(c)] = int32_t(s1 ? c - 256 : (c < 256 ? c : c - 512));
        kv.cell_seqs[size_t(c)] = s1 ? 2u : (c >= 130 && c <= 140 ? 1u | 64u : 1u);
    }
    for (int64_t c = 1300; c <= 1310; ++c) {
        kv.cell_pos[size_t(c)] = int32_t(c - 400);
        kv.cell_seqs[size_t(c)] = 64u;
    }
    kv.cell_pos[7] = -1;
    kv.cell_seqs[7] = 0;
    store_random_kv(vb, kv.view(n_cells), 0, 41 + uint32_t(head_dim));
    // Token 1 sees cells up to 812 of sequence 0 (a split cut by its position),
    // token 2 the first 101 cells of sequence 1, token 3 nothing (sequence 5),
    // token 4 sequence 6.
    const std::vector<int32_t> pos_all = {687, 300, 100, 10, 1000}, seq_all = {0, 0, 1, 5, 6};
    const std::vector<std::vector<size_t>> token_sets = {{0}, {0, 1, 2, 3}, {3, 4}};
    for (int64_t n_scan : {int64_t(50), int64_t(200), n_cells})
        for (const auto& tokens : token_sets) {
            const int64_t n_tok = int64_t(tokens.size());
            const std::string what = config + (t == GgmlType::F16 ? " f16" : " f32") + " head_dim " +
                                     std::to_string(head_dim) + " n_scan " + std::to_string(n_scan) + " n_tok " +
                                     std::to_string(n_tok);
            std::vector<int32_t> pos, seq;
            for (size_t i : tokens) {
                pos.push_back(pos_all[i]);
                seq.push_back(seq_all[i]);
            }
            auto q = random_floats(size_t(n_tok * cols), 43 + uint32_t(n_tok), -3.0f, 3.0f);
            const KvView view = kv.view(n_scan);
            std::vector<float> want(q.size());
            ref::attention(host_act(q, n_tok, cols), view, 0, p, pos, seq, host_act(want, n_tok, cols));
            auto dq = device_act(vb, n_tok, cols, &q), dout = device_act(vb, n_tok, cols);
            const uint64_t decode0 = dispatches(vb, "attention_decode"), merge0 = dispatches(vb, "attention_merge");
            vb.attention(dq.act(), view, 0, p, pos, seq, dout.act());
            const auto got = read(vb, dout.act());
            check_close(got, want, 1e-5f, 1e-4f, what);
            CHECK_MESSAGE(dispatches(vb, "attention_decode") == decode0 + 1, what);
            CHECK_MESSAGE(dispatches(vb, "attention_merge") == merge0 + (n_scan > 256 ? 1 : 0), what);
            // On the integer-dot path the output's q8 copy (whole 32-element blocks
            // per head) comes with it: the output projection quantizes nothing.
            if (vb.device().int_dot() && head_dim % 32 == 0) {
                const uint64_t quantized = dispatches(vb, "quantize_q8");
                check_q8_copy(vb, dout.act(), what);
                CHECK_MESSAGE(dispatches(vb, "quantize_q8") == quantized + 1, what);  // only after add()
            }
            for (size_t r = 0; r < tokens.size(); ++r)  // the token that sees nothing: zeros
                if (tokens[r] == 3)
                    for (int64_t i = 0; i < cols; ++i) CHECK(got[r * size_t(cols) + size_t(i)] == 0.0f);
        }
}

}  // namespace

TEST_CASE("vulkan attention: decode over one chunk, several, and split contexts: masks, GQA, F16/F32, both reductions") {
    for (bool int_dot : {false, true})
        for (bool sg : {true, false}) {
            std::unique_ptr<vk::VulkanBackend> vb;
            {
                ProfileVariable profile("1");
                vb = vulkan_backend(sg, int_dot);
            }
            if (!vb) return;
            if (int_dot && !vb->device().int_dot()) {
                MESSAGE("int-dot variants skipped: " << vb->device().name() << " lacks VK_KHR_shader_integer_dot_product");
                return;
            }
            const std::string config = std::string(int_dot ? "int dot, " : "float, ") + (sg ? "subgroups" : "shared memory");
            for (GgmlType t : {GgmlType::F16, GgmlType::F32})
                for (int head_dim : {40, 128, 256}) check_decode_attention(*vb, t, head_dim, config);
        }
}
