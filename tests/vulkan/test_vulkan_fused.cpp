// The fused ops of the Vulkan decode path (add_rms_norm, rope_kv_store, and the norms and swiglu that write the integer-dot matvec's
// q8 input themselves) against the unfused sequence on the same backend (bit
// for bit: the same arithmetic in another dispatch) and against the CPU
// reference, with odd sizes, with and without subgroups, and on the
// integer-dot path wherever the device has it.
#include <cstring>

#include "formats/quant_traits.h"
#include "kernels/cpu/ops_ref.h"
#include "vulkan_test_util.h"

using namespace kiln;
using namespace kiln::test;

namespace {

// Backends to run each check on: both reductions, float and (where the device
// has it) integer-dot matvecs; `what` names the configuration.
struct Config {
    bool sg, int_dot;
    std::string what() const {
        return std::string(sg ? "subgroups" : "shared memory") + (int_dot ? ", int dot" : ", float");
    }
};
template <class F>
void for_each_backend(F&& f) {
    for (bool int_dot : {false, true})
        for (bool sg : {true, false}) {
            // Float tiles for batches: the cooperative-matrix shader rounds to f16 (its own test).
            auto vb = vulkan_backend(sg, int_dot, false);
            if (!vb) return;
            if (int_dot && !vb->device().int_dot()) {
                MESSAGE("int-dot variants skipped: " << vb->device().name() << " lacks VK_KHR_shader_integer_dot_product");
                return;
            }
            f(*vb, Config{sg, int_dot});
        }
}

}  // namespace


TEST_CASE("vulkan fused: add_rms_norm equals add then rms_norm, with its q8 copy on the integer-dot path") {
    for_each_backend([&](vk::VulkanBackend& vb, Config c) {
        // 8192 + 96: blocks past one pass of the 256 invocations (read again after the reduction).
        for (int64_t cols : {int64_t(300), int64_t(4096 + 96), int64_t(8192 + 96)})
            for (int64_t rows : {1, 3, 4, 5}) {
                const std::string what = c.what() + " " + std::to_string(rows) + "x" + std::to_string(cols);
                auto x = random_floats(size_t(rows * cols), 1 + uint32_t(rows), -4.0f, 4.0f);
                auto bv = random_floats(size_t(rows * cols), 2 + uint32_t(rows), -4.0f, 4.0f);
                auto g = random_floats(size_t(cols), 3);
                const Weight w = upload_vector(vb, g);
                auto x1 = device_act(vb, rows, cols, &x), x2 = device_act(vb, rows, cols, &x);
                auto db = device_act(vb, rows, cols, &bv);
                auto o1 = device_act(vb, rows, cols), o2 = device_act(vb, rows, cols);
                vb.add_rms_norm(x1.act(), db.act(), w, 1e-5f, o1.act());
                const auto got_x = read(vb, x1.act()), got = read(vb, o1.act());
                vb.Backend::add_rms_norm(x2.act(), db.act(), w, 1e-5f, o2.act());
                check_same(got_x, read(vb, x2.act()), what + " residual");
                check_same(got, read(vb, o2.act()), what + " norm");
                std::vector<float> sum(x.size()), want(x.size());
                ref::add(host_act(x, rows, cols), host_act(bv, rows, cols), host_act(sum, rows, cols));
                ref::rms_norm(host_act(sum, rows, cols), g.data(), 1e-5f, host_act(want, rows, cols));
                check_close(got_x, sum, 0.0f, 0.0f, what + " residual vs CPU");
                check_close(got, want, 1e-6f, 1e-5f, what + " norm vs CPU");
                if (c.int_dot && cols % 32 == 0 && rows <= 4) {
                    vb.add_rms_norm(x1.act(), db.act(), w, 1e-5f, o1.act());
                    check_q8_copy(vb, o1.act(), what);
                }
            }
        // Rows off whole vec4s (x, b and out from column 1 of wider rows): element by element.
        {
            const int64_t rows = 3, cols = 517;
            auto x = random_floats(size_t(rows * cols), 11, -4.0f, 4.0f), bv = random_floats(size_t(rows * cols), 12);
            auto g = random_floats(size_t(cols), 13);
            const Weight w = upload_vector(vb, g);
            auto dx = device_act(vb, rows, cols + 1), db = device_act(vb, rows, cols + 1), dout = device_act(vb, rows, cols + 1);
            const auto at_col1 = [&](const ActBuffer& a) {
                Act v = a.act();
                v.data += 1;
                v.n_cols = cols;
                return v;
            };
            vb.write_act(at_col1(dx), x.data());
            vb.write_act(at_col1(db), bv.data());
            vb.add_rms_norm(at_col1(dx), at_col1(db), w, 1e-5f, at_col1(dout));
            std::vector<float> sum(x.size()), want(x.size());
            ref::add(host_act(x, rows, cols), host_act(bv, rows, cols), host_act(sum, rows, cols));
            ref::rms_norm(host_act(sum, rows, cols), g.data(), 1e-5f, host_act(want, rows, cols));
            check_close(read(vb, at_col1(dx)), sum, 0.0f, 0.0f, c.what() + " unaligned residual vs CPU");
            check_close(read(vb, at_col1(dout)), want, 1e-6f, 1e-5f, c.what() + " unaligned norm vs CPU");
            const auto all = read(vb, dout.act());
            for (int64_t r = 0; r < rows; ++r) CHECK(all[size_t(r * (cols + 1))] == 0.0f);
        }
        // out sharing x's buffer: the unfused pair (x is updated before the norm reads it).
        auto x = random_floats(64, 4), bv = random_floats(32, 5), g = random_floats(32, 6);
        const Weight w = upload_vector(vb, g);
        auto dx = device_act(vb, 2, 32, &x);
        auto db = device_act(vb, 1, 32, &bv);
        vb.add_rms_norm(dx.act().rows(0, 1), db.act(), w, 1e-5f, dx.act().rows(1, 1));
        std::vector<float> sum(32), want(32);
        ref::add(host_act(x, 1, 32), host_act(bv, 1, 32), host_act(sum, 1, 32));
        ref::rms_norm(host_act(sum, 1, 32), g.data(), 1e-5f, host_act(want, 1, 32));
        const auto got = read(vb, dx.act());
        check_close({got.begin() + 32, got.end()}, want, 1e-6f, 1e-5f, c.what() + " out beside x in one buffer");
    });
}

TEST_CASE("vulkan fused: rms_norm and swiglu write the q8 copy of their decode rows") {
    for_each_backend([&](vk::VulkanBackend& vb, Config c) {
        // Writes no q8 copies: the float reference, with the same reduction
        // (subgroup sums and the shared-memory tree add in different orders).
        auto plain = vulkan_backend(c.sg, false, false);
        if (!plain) return;
        for (int64_t cols : {int64_t(96), int64_t(11008), int64_t(517)})
            for (int64_t rows : {1, 4, 6}) {
                const std::string what = c.what() + " " + std::to_string(rows) + "x" + std::to_string(cols);
                const bool q8 = c.int_dot && cols % 32 == 0 && rows <= 4;
                auto x = random_floats(size_t(rows * cols), 8 + uint32_t(rows), -6.0f, 6.0f);
                auto u = random_floats(size_t(rows * cols), 9 + uint32_t(rows), -6.0f, 6.0f);
                auto g = random_floats(size_t(cols), 10);
                const Weight w = upload_vector(vb, g), pw = upload_vector(*plain, g);

                auto dx = device_act(vb, rows, cols, &x), dout = device_act(vb, rows, cols);
                auto px = device_act(*plain, rows, cols, &x), pout = device_act(*plain, rows, cols);
                vb.rms_norm(dx.act(), w, 1e-5f, dout.act());
                plain->rms_norm(px.act(), pw, 1e-5f, pout.act());
                check_same(read(vb, dout.act()), read(*plain, pout.act()), what + " rms_norm");
                if (q8) check_q8_copy(vb, dout.act(), what + " rms_norm");
                vb.rms_norm(dx.act(), w, 1e-5f, dx.act());  // in place
                check_same(read(vb, dx.act()), read(*plain, pout.act()), what + " rms_norm in place");
                if (q8) check_q8_copy(vb, dx.act(), what + " rms_norm in place");

                auto dg = device_act(vb, rows, cols, &x), du = device_act(vb, rows, cols, &u);
                auto pg = device_act(*plain, rows, cols, &x), pu = device_act(*plain, rows, cols, &u);
                vb.swiglu(dg.act(), du.act(), dg.act());  // into gate, as the model calls it
                plain->swiglu(pg.act(), pu.act(), pg.act());
                const auto got = read(vb, dg.act());
                check_same(got, read(*plain, pg.act()), what + " swiglu");
                std::vector<float> want(x.size());
                ref::swiglu(host_act(x, rows, cols), host_act(u, rows, cols), host_act(want, rows, cols));
                check_close(got, want, 1e-6f, 1e-5f, what + " swiglu vs CPU");
                if (q8) check_q8_copy(vb, dg.act(), what + " swiglu");
            }
    });
}

TEST_CASE("vulkan fused: rope_kv_store equals rope, rope, kv_store (normal, neox, partial rotation, GQA, F16/F32)") {
    for_each_backend([&](vk::VulkanBackend& vb, Config c) {
        const int n_head = 6, n_head_kv = 2, head_dim = 20, n_tok = 3, n_cells = 7;
        const int64_t q_cols = n_head * head_dim, kv_dim = n_head_kv * head_dim;
        const std::vector<int32_t> pos = {0, 5, 1000}, cells = {6, 0, 3};
        for (GgmlType kt : {GgmlType::F16, GgmlType::F32})
            for (auto mode : {RopeParams::Mode::Normal, RopeParams::Mode::Neox})
                for (int n_rot : {20, 12}) {
                    const std::string what = c.what() + (kt == GgmlType::F16 ? " F16" : " F32") +
                                             (mode == RopeParams::Mode::Neox ? " neox" : " normal") + " n_rot " +
                                             std::to_string(n_rot);
                    RopeParams p;
                    p.mode = mode;
                    p.n_rot = n_rot;
                    auto q = random_floats(size_t(n_tok * q_cols), 31);
                    auto k = random_floats(size_t(n_tok * kv_dim), 32, -3.0f, 3.0f);
                    auto v = random_floats(size_t(n_tok * kv_dim), 33);
                    // Two device caches (layer 1 of each is written), as activation buffers of their byte size.
                    const int64_t floats = n_cells * kv_dim / (kt == GgmlType::F16 ? 2 : 1);
                    std::vector<DeviceAct> bufs;
                    for (int i = 0; i < 8; ++i) bufs.push_back(device_act(vb, 1, floats));
                    std::vector<int32_t> cell_pos(n_cells, -1);
                    std::vector<uint64_t> cell_seqs(n_cells, 0);
                    const std::vector<KvLayerView> l1 = {{bufs[0].act().data, bufs[1].act().data},
                                                         {bufs[2].act().data, bufs[3].act().data}};
                    const std::vector<KvLayerView> l2 = {{bufs[4].act().data, bufs[5].act().data},
                                                         {bufs[6].act().data, bufs[7].act().data}};
                    const KvView kv1{kt, n_cells, kv_dim, l1, cell_pos.data(), cell_seqs.data(), n_cells};
                    const KvView kv2{kt, n_cells, kv_dim, l2, cell_pos.data(), cell_seqs.data(), n_cells};
                    auto q1 = device_act(vb, n_tok, q_cols, &q), k1 = device_act(vb, n_tok, kv_dim, &k);
                    auto q2 = device_act(vb, n_tok, q_cols, &q), k2 = device_act(vb, n_tok, kv_dim, &k);
                    auto dv = device_act(vb, n_tok, kv_dim, &v);
                    vb.rope_kv_store(q1.act(), k1.act(), dv.act(), n_head, head_dim, pos, p, kv1, 1, cells);
                    vb.Backend::rope_kv_store(q2.act(), k2.act(), dv.act(), n_head, head_dim, pos, p, kv2, 1, cells);
                    const auto gq = read(vb, q1.act()), gk = read(vb, k1.act());
                    check_same(gq, read(vb, q2.act()), what + " q");
                    check_same(gk, read(vb, k2.act()), what + " k");
                    check_same(read(vb, bufs[2].act()), read(vb, bufs[6].act()), what + " K cache");
                    check_same(read(vb, bufs[3].act()), read(vb, bufs[7].act()), what + " V cache");
                    check_same(read(vb, bufs[0].act()), read(vb, bufs[4].act()), what + " layer 0 untouched");
                    auto wq = q, wk = k;
                    ref::rope(host_act(wq, n_tok, q_cols), n_head, head_dim, pos, p);
                    ref::rope(host_act(wk, n_tok, kv_dim), n_head_kv, head_dim, pos, p);
                    check_close(gq, wq, 1e-6f, 1e-6f, what + " q vs CPU");
                    check_close(gk, wk, 1e-6f, 1e-6f, what + " k vs CPU");
                    // The CPU's cache from the GPU's roped k: the same bits.
                    const size_t per = size_t(n_cells * kv_dim) * (kt == GgmlType::F16 ? 2 : 4);
                    std::vector<uint8_t> hk(per * 2), hv(per * 2);
                    const std::vector<KvLayerView> hl = {{hk.data(), hv.data()}, {hk.data() + per, hv.data() + per}};
                    const KvView hkv{kt, n_cells, kv_dim, hl, cell_pos.data(), cell_seqs.data(), n_cells};
                    auto gk_copy = gk;
                    ref::kv_store(hkv, 1, host_act(gk_copy, n_tok, kv_dim), host_act(v, n_tok, kv_dim), cells);
                    const auto ck = read(vb, bufs[2].act()), cv = read(vb, bufs[3].act());
                    CHECK_MESSAGE(std::memcmp(ck.data(), hk.data() + per, per) == 0, what << " K cache vs CPU");
                    CHECK_MESSAGE(std::memcmp(cv.data(), hv.data() + per, per) == 0, what << " V cache vs CPU");
                }
    });
}
