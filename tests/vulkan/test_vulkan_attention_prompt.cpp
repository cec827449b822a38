// Prompt-sized attention (16+ tokens) against the CPU reference: on devices
// with cooperative matrices this is attention_cm*.comp (64 queries a
// workgroup, cells in tiles of 32, f16 scores and weights), elsewhere
// attention_decode.glsl; both must give the reference's output.
#include <cmath>

#include "kernels/cpu/ops_ref.h"
#include "vulkan_test_util.h"

using namespace kiln;
using namespace kiln::test;

TEST_CASE("vulkan: prompt attention over an F16 cache: head sizes 64 and 128, cut query groups, GQA, two sequences, empty cells") {
    auto vb = vulkan_backend();
    if (!vb) return;
    const bool cm = vb->device().coopmat();
    if (!cm) MESSAGE("attention_cm*.comp not tested on " << vb->device().name() << ": " << vb->device().coopmat_missing());
    for (int head_dim : {64, 128}) {
        const AttentionParams p{8, 2, head_dim, 1.0f / std::sqrt(float(head_dim))};
        const int64_t dim = p.n_head_kv * p.head_dim, n_cells = 300;
        HostKv kv(GgmlType::F16, n_cells, dim, 1);
        kv.hold_two_sequences();
        store_random_kv(*vb, kv.view(n_cells), 0, 41);

        // 150 tokens: two full groups of 64 and a cut one (16 + 6 queries); sequence 0 at
        // positions 50..149, sequence 1 at 100..139 then 100..108, and one token of a
        // sequence no cell holds (it sees nothing: zeros). 250 cells scanned: the last
        // tile of 32 is cut.
        const int64_t n_tok = 150;
        std::vector<int32_t> pos(n_tok), seq(n_tok);
        for (int64_t i = 0; i < n_tok; ++i) {
            seq[size_t(i)] = i < 100 ? 0 : 1;
            pos[size_t(i)] = int32_t(i < 100 ? 50 + i : 100 + (i - 100) % 40);
        }
        seq[n_tok - 1] = 7;
        const KvView view = kv.view(250);
        auto q = random_floats(size_t(n_tok * p.n_head * head_dim), 43, -3.0f, 3.0f);
        std::vector<float> want(q.size());
        ref::attention(host_act(q, n_tok, p.n_head * head_dim), view, 0, p, pos, seq, host_act(want, n_tok, p.n_head * head_dim));
        // From row 2 of larger buffers, so row offsets and strides count.
        auto dq = device_act(*vb, n_tok + 3, p.n_head * head_dim);
        auto dout = device_act(*vb, n_tok + 3, p.n_head * head_dim);
        const Act qa = dq.act().rows(2, n_tok), oa = dout.act().rows(2, n_tok);
        vb->write_act(qa, q.data());
        vb->attention(qa, view, 0, p, pos, seq, oa);
        const auto got = read(*vb, oa);
        // Cooperative matrices: queries and softmax weights rounded to f16 (2^-11
        // relative each), scores of |q| <= 3 over 64..128 dimensions: ~1e-3 of |v| <= 1.
        const float tol = cm ? 4e-3f : 1e-5f;
        check_close(got, want, tol, cm ? 4e-3f : 1e-4f, "prompt attention head_dim " + std::to_string(head_dim));
        const size_t row = size_t(p.n_head * head_dim);
        for (size_t i = (n_tok - 1) * row; i < got.size(); ++i) CHECK(got[i] == 0.0f);
        // Rows around the range stay untouched.
        const auto all = read(*vb, dout.act());
        for (size_t i = 0; i < 2 * row; ++i) CHECK(all[i] == 0.0f);
        for (size_t i = all.size() - row; i < all.size(); ++i) CHECK(all[i] == 0.0f);
    }
}
