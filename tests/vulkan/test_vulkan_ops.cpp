// Every Vulkan shader against the CPU reference op (kernels/cpu/ops_ref) on
// random inputs whose sizes leave tails (rows not a multiple of the workgroup,
// token counts not a multiple of the matmul tile, cells past one attention chunk).
#include <algorithm>
#include <cstring>
#include <random>

#include "formats/fp16.h"
#include "formats/quant_traits.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/vulkan/spirv_bindings.h"
#include "kernels/vulkan/spirv_table.h"
#include "vulkan_test_util.h"

using namespace kiln;
using namespace kiln::test;

namespace {

// The cooperative-matrix matmul rounds weights and activations to f16
// (relative error 2^-11 each): each product is off by at most 2^-10 of
// |w x|, so bound the error of each output by that share of sum |w| |x|,
// plus float summation. wf: the dequantized weight, (n_out, n_in).
void check_f16_products(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& wf,
                        const std::vector<float>& x, int64_t n_in, int64_t n_out, int64_t n_tok, const std::string& what) {
    for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t o = 0; o < n_out; ++o) {
            double mag = 0;
            for (int64_t i = 0; i < n_in; ++i) mag += std::fabs(double(wf[size_t(o * n_in + i)]) * x[size_t(t * n_in + i)]);
            const size_t k = size_t(t * n_out + o);
            if (!(std::fabs(got[k] - want[k]) <= 2e-5 * double(n_in) + 1.5 * std::ldexp(mag, -10))) {
                FAIL_CHECK(what << ": token " << t << " row " << o << " is " << got[k] << ", expected " << want[k]);
                return;
            }
        }
}

// x and y are row ranges of larger buffers (from row 2 of each), so the
// shader's row offsets and strides are exercised along with the tails.
void check_matmul(vk::VulkanBackend& vb, GgmlType type, int64_t n_in, int64_t n_out, int64_t n_tok) {
    const HostWeight hw = make_weight(type, n_in, n_out, 7 + uint32_t(type));
    const Weight w = vb.upload_weight(hw.view);
    auto x = random_floats(size_t(n_tok * n_in), 11);
    std::vector<float> want(size_t(n_tok * n_out));
    ref::matmul(hw.view, host_act(x, n_tok, n_in), host_act(want, n_tok, n_out));
    auto dx = device_act(vb, n_tok + 3, n_in);
    auto dy = device_act(vb, n_tok + 3, n_out);
    const Act xa = dx.act().rows(2, n_tok), ya = dy.act().rows(2, n_tok);
    vb.write_act(xa, x.data());
    vb.matmul(w, xa, ya);
    const auto got = read(vb, ya);
    const std::string what = std::string(vb.device().coopmat() ? "coopmat " : "") + "matmul " + quant_traits(type).name +
                             " n_in " + std::to_string(n_in) + " n_out " + std::to_string(n_out) + " n_tok " +
                             std::to_string(n_tok);
    if (vb.device().coopmat()) {
        check_f16_products(got, want, dequantize(type, hw.bytes.data(), n_in * n_out), x, n_in, n_out, n_tok, what);
    } else {
        // Sums of n_in products in another order: bound by the magnitude of the terms.
        check_close(got, want, 2e-5f * float(n_in), 1e-4f, what);
    }
    // Rows around the range stay untouched.
    const auto all = read(vb, dy.act());
    const auto zero = [](float v) { return v == 0.0f; };
    CHECK(std::all_of(all.begin(), all.begin() + 2 * n_out, zero));
    CHECK(std::all_of(all.end() - n_out, all.end(), zero));
}

}  // namespace

TEST_CASE("vulkan: device list names a usable device") {
    const auto devs = vulkan_list_devices();
    auto vb = vulkan_backend();
    if (!vb) return;
    REQUIRE(!devs.empty());
    CHECK(devs[0].usable);
    CHECK(!devs[0].name.empty());
    CHECK(devs[0].name == vb->device().name());
}

TEST_CASE("vulkan: a missing device index is an error naming the count") {
    if (!vulkan_backend()) return;
    try {
        vk::VulkanBackend b(vk::VulkanOptions{999, true});
        FAIL("device 999 opened");
    } catch (const VulkanError& e) {
        CHECK(std::string(e.what()).find("does not exist") != std::string::npos);
    }
}

// Both matmul shaders: the float tiles everywhere, the cooperative-matrix one
// where the device offers it (NVIDIA; not lavapipe, so CI runs only the first).
TEST_CASE("vulkan: matmul of every weight type, full and partial tiles, float and cooperative-matrix shaders") {
    for (bool sg : {true, false})
        for (bool cm : {false, true}) {
            auto vb = vulkan_backend(sg, false, cm);
            if (!vb) return;
            if (cm && !vb->device().coopmat()) {
                if (sg) MESSAGE("matmul_cm.comp not tested on " << vb->device().name() << ": " << vb->device().coopmat_missing());
                continue;
            }
            for (GgmlType t : kWeightTypes) {
                const int64_t bs = quant_traits(t).block_size;
                // Rows not a multiple of the 32-element step for the float types, an
                // odd block count for the 32-blocks; K-quants need whole 256-blocks.
                const int64_t n_in = bs == 256 ? 512 : (bs == 1 ? 163 : 96);
                // Tokens: one, a partial tile, a full 64-token tile, one past it (the
                // 128-token tiles of matmul_cm.comp from here), two and a bit, 300 (a
                // partial third 128-token tile); rows: a partial tile, and one past
                // 128 (two 64-row tiles and a tail, a 128-row tile and a tail).
                for (int64_t n_tok : {1, 7, 64, 65, 130, 300}) check_matmul(*vb, t, n_in, 37, n_tok);
                check_matmul(*vb, t, n_in, 131, 65);
                check_matmul(*vb, t, n_in, 131, 300);
            }
        }
}

TEST_CASE("vulkan: get_rows of every weight type") {
    auto vb = vulkan_backend();
    if (!vb) return;
    for (GgmlType t : kWeightTypes) {
        const int64_t n_cols = quant_traits(t).block_size == 256 ? 256 : 160;
        const HostWeight hw = make_weight(t, n_cols, 19, 3);
        const Weight w = vb->upload_weight(hw.view);
        const std::vector<int32_t> ids = {0, 18, 5, 5, 11};
        std::vector<float> want(ids.size() * size_t(n_cols));
        ref::get_rows(hw.view, ids, host_act(want, int64_t(ids.size()), n_cols));
        auto out = device_act(*vb, int64_t(ids.size()), n_cols);
        vb->get_rows(w, ids, out.act());
        // Dequantization is exact up to the order of two float operations.
        check_close(read(*vb, out.act()), want, 1e-6f, 1e-6f, std::string("get_rows ") + quant_traits(t).name);
    }
}

TEST_CASE("vulkan: rms_norm, in place and out of place: both reductions, tails, rows past one pass, unaligned rows") {
    for (bool sg : {true, false}) {
        auto vb = vulkan_backend(sg);
        if (!vb) return;
        // 300: blocks of 32 with a tail of 12; 517: a tail inside a vec4; 8192 + 261:
        // blocks past one pass of 256 invocations (read again after the reduction).
        for (int64_t cols : {int64_t(300), int64_t(517), int64_t(8192 + 261)})
            // col 0: rows on whole vec4s (vec4 loads); col 1: element by element.
            for (int64_t col : {int64_t(0), int64_t(1)}) {
                const int64_t rows = 5;
                const std::string what = std::string(sg ? "subgroups" : "shared memory") + " rms_norm " +
                                         std::to_string(cols) + " cols at column " + std::to_string(col);
                auto x = random_floats(size_t(rows * cols), 1 + uint32_t(cols), -3.0f, 3.0f);
                auto wv = random_floats(size_t(cols), 2);
                const Weight w = upload_vector(*vb, wv);
                std::vector<float> want(x.size());
                ref::rms_norm(host_act(x, rows, cols), wv.data(), 1e-5f, host_act(want, rows, cols));
                auto dx = device_act(*vb, rows, cols + col), dout = device_act(*vb, rows, cols + col);
                Act xa = dx.act(), oa = dout.act();
                xa.data += col;
                oa.data += col;
                xa.n_cols = oa.n_cols = cols;
                vb->write_act(xa, x.data());
                vb->rms_norm(xa, w, 1e-5f, oa);
                check_close(read(*vb, oa), want, 1e-6f, 1e-5f, what);
                // Column 0 of the wider rows stays untouched.
                if (col == 1) {
                    const auto all = read(*vb, dout.act());
                    for (int64_t r = 0; r < rows; ++r) CHECK(all[size_t(r * (cols + 1))] == 0.0f);
                }
                vb->rms_norm(xa, w, 1e-5f, xa);
                check_close(read(*vb, xa), want, 1e-6f, 1e-5f, what + " in place");
            }
    }
}

TEST_CASE("vulkan: rope normal and neox, partial rotation, YaRN and frequency factors") {
    auto vb = vulkan_backend();
    if (!vb) return;
    const int n_head = 3, head_dim = 16, n_tok = 4;
    const std::vector<int32_t> pos = {0, 7, 300, 2047};
    std::vector<float> ff = {1.0f, 2.0f, 4.0f, 8.0f, 1.5f, 1.0f};
    for (auto mode : {RopeParams::Mode::Normal, RopeParams::Mode::Neox}) {
        for (int variant = 0; variant < 3; ++variant) {
            RopeParams p;
            p.mode = mode;
            p.n_rot = variant == 1 ? 12 : 16;
            if (variant == 1) p.freq_factors = ff.data();
            if (variant == 2) {
                p.freq_scale = 0.25f;
                p.ext_factor = 1.0f;
                p.n_ctx_orig = 512;
            }
            auto x = random_floats(size_t(n_tok * n_head * head_dim), 9);
            auto want = x;
            ref::rope(host_act(want, n_tok, n_head * head_dim), n_head, head_dim, pos, p);
            auto dx = device_act(*vb, n_tok, n_head * head_dim, &x);
            vb->rope(dx.act(), n_head, head_dim, pos, p);
            check_close(read(*vb, dx.act()), want, 1e-6f, 1e-6f, "rope variant " + std::to_string(variant));
        }
    }
}

TEST_CASE("vulkan: swiglu, add (aliased), softmax, copy_rows") {
    auto vb = vulkan_backend();
    if (!vb) return;
    const int64_t rows = 3, cols = 517;
    auto a = random_floats(size_t(rows * cols), 4, -8.0f, 8.0f);
    auto b = random_floats(size_t(rows * cols), 5, -8.0f, 8.0f);
    auto da = device_act(*vb, rows, cols, &a);
    auto db = device_act(*vb, rows, cols, &b);

    std::vector<float> want(a.size());
    ref::swiglu(host_act(a, rows, cols), host_act(b, rows, cols), host_act(want, rows, cols));
    auto dout = device_act(*vb, rows, cols);
    vb->swiglu(da.act(), db.act(), dout.act());
    check_close(read(*vb, dout.act()), want, 1e-6f, 1e-5f, "swiglu");

    ref::add(host_act(a, rows, cols), host_act(b, rows, cols), host_act(want, rows, cols));
    vb->add(da.act(), db.act(), da.act());
    check_close(read(*vb, da.act()), want, 0.0f, 0.0f, "add into a");

    auto s = b;
    ref::softmax(host_act(s, rows, cols));
    vb->softmax(db.act());
    check_close(read(*vb, db.act()), s, 1e-9f, 1e-5f, "softmax");

    const std::vector<int32_t> pick = {2, 0, 2};
    std::vector<float> picked(pick.size() * size_t(cols));
    ref::copy_rows(host_act(s, rows, cols), pick, host_act(picked, int64_t(pick.size()), cols));
    auto dp = device_act(*vb, int64_t(pick.size()), cols);
    vb->copy_rows(db.act(), pick, dp.act());
    check_close(read(*vb, dp.act()), picked, 1e-9f, 1e-5f, "copy_rows");
    // A row range of a larger buffer (Act::rows) reads and writes at its offset.
    auto tail = device_act(*vb, rows, cols);
    vb->copy_rows(db.act(), std::vector<int32_t>{1}, tail.act().rows(2, 1));
    const auto t = read(*vb, tail.act());
    const auto dev_s = read(*vb, db.act());
    CHECK(std::memcmp(t.data() + 2 * cols, dev_s.data() + cols, size_t(cols) * 4) == 0);
    CHECK(t[0] == 0.0f);
}

TEST_CASE("vulkan: kv_store writes the reference's bits into a device cache") {
    auto vb = vulkan_backend();
    if (!vb) return;
    for (GgmlType t : {GgmlType::F16, GgmlType::F32}) {
        const int64_t n_cells = 10, dim = 24, n_tok = 3;
        HostKv ref_kv(t, n_cells, dim, 2);
        // Values that exercise f16 rounding: subnormals, ties, overflow.
        auto kx = random_floats(size_t(n_tok * dim), 12, -70000.0f, 70000.0f);
        auto vx = random_floats(size_t(n_tok * dim), 13, -1e-5f, 1e-5f);
        const std::vector<int32_t> cells = {9, 0, 4};
        ref::kv_store(ref_kv.view(n_cells), 1, host_act(kx, n_tok, dim), host_act(vx, n_tok, dim), cells);

        // Device layers: activation buffers of the cache's byte size.
        const int64_t floats = n_cells * dim / (t == GgmlType::F16 ? 2 : 1);
        auto k0 = device_act(*vb, 1, floats), v0 = device_act(*vb, 1, floats);
        auto k1 = device_act(*vb, 1, floats), v1 = device_act(*vb, 1, floats);
        const std::vector<KvLayerView> layers = {{k0.act().data, v0.act().data}, {k1.act().data, v1.act().data}};
        const KvView dkv{t, n_cells, dim, layers, ref_kv.cell_pos.data(), ref_kv.cell_seqs.data(), n_cells};
        auto dk = device_act(*vb, n_tok, dim, &kx), dv = device_act(*vb, n_tok, dim, &vx);
        vb->kv_store(dkv, 1, dk.act(), dv.act(), cells);
        const auto gk = read(*vb, k1.act()), gv = read(*vb, v1.act());
        const size_t per = ref_kv.k.size() / 2;
        CHECK(std::memcmp(gk.data(), ref_kv.k.data() + per, per) == 0);
        CHECK(std::memcmp(gv.data(), ref_kv.v.data() + per, per) == 0);
    }
}

TEST_CASE("vulkan: attention over a host cache: GQA, two sequences, empty cells, several chunks") {
    for (bool f16 : {true, false}) {
        auto vb = vulkan_backend();
        if (!vb) return;
        const GgmlType t = f16 ? GgmlType::F16 : GgmlType::F32;
        const AttentionParams p{8, 2, 32, 1.0f / std::sqrt(32.0f)};
        const int64_t dim = p.n_head_kv * p.head_dim, n_cells = 300, n_tok = 5;
        HostKv kv(t, n_cells, dim, 1);
        kv.hold_two_sequences();
        store_random_kv(*vb, kv.view(n_cells), 0, 21);

        const std::vector<int32_t> pos = {199, 0, 120, 139, 150};
        const std::vector<int32_t> seq = {0, 0, 0, 1, 1};
        auto q = random_floats(size_t(n_tok * p.n_head * p.head_dim), 23, -3.0f, 3.0f);
        const KvView view = kv.view(250);
        std::vector<float> want(q.size());
        ref::attention(host_act(q, n_tok, p.n_head * p.head_dim), view, 0, p, pos, seq,
                       host_act(want, n_tok, p.n_head * p.head_dim));
        auto dq = device_act(*vb, n_tok, p.n_head * p.head_dim, &q);
        auto dout = device_act(*vb, n_tok, p.n_head * p.head_dim);
        vb->attention(dq.act(), view, 0, p, pos, seq, dout.act());
        check_close(read(*vb, dout.act()), want, 1e-5f, 1e-4f, f16 ? "attention f16" : "attention f32");

        // A token that sees nothing gets zeros, as the reference.
        const std::vector<int32_t> pos2 = {5}, seq2 = {7};
        auto dout2 = device_act(*vb, 1, p.n_head * p.head_dim);
        vb->attention(dq.act().rows(0, 1), view, 0, p, pos2, seq2, dout2.act());
        for (float x : read(*vb, dout2.act())) CHECK(x == 0.0f);
    }
}

namespace {
// y = x W^T for n_tok tokens read from x at `x_col` floats past the start of
// each row of a wider activation (x_col % 4 != 0 makes the backend take the
// batch shader, whose reads need no vec4 alignment).
void check_matvec(vk::VulkanBackend& vb, GgmlType type, int64_t n_in, int64_t n_out, int64_t n_tok, int64_t x_col = 0) {
    const HostWeight hw = make_weight(type, n_in, n_out, 31 + uint32_t(n_in));
    const Weight w = vb.upload_weight(hw.view);
    auto wide = random_floats(size_t(n_tok * (n_in + x_col)), 17 + uint32_t(n_tok));
    std::vector<float> x(size_t(n_tok * n_in));
    for (int64_t t = 0; t < n_tok; ++t)
        std::memcpy(&x[size_t(t * n_in)], &wide[size_t(t * (n_in + x_col) + x_col)], size_t(n_in) * 4);
    std::vector<float> want(size_t(n_tok * n_out));
    ref::matmul(hw.view, host_act(x, n_tok, n_in), host_act(want, n_tok, n_out));
    auto dx = device_act(vb, n_tok, n_in + x_col, &wide);
    Act xa = dx.act();
    xa.data += x_col;
    xa.n_cols = n_in;
    auto dy = device_act(vb, n_tok, n_out);
    vb.matmul(w, xa, dy.act());
    // The reference sums in order: its rounding error grows about as sqrt(n_in)
    // times the partial sums; one wrong nibble moves a result by ~0.1.
    check_close(read(vb, dy.act()), want, 1e-6f * float(n_in), 1e-5f,
                std::string("matvec ") + quant_traits(type).name + " n_in " + std::to_string(n_in) + " n_tok " +
                    std::to_string(n_tok) + " x_col " + std::to_string(x_col));
}
}  // namespace

TEST_CASE("vulkan: matvec (1..4 tokens) of every weight type: odd row counts, rows of several passes, both reductions") {
    for (bool sg : {true, false}) {
        // Float tiles for the unaligned case below: the cooperative-matrix
        // shader rounds to f16 and has its own test and tolerance.
        auto vb = vulkan_backend(sg, false, false);
        if (!vb) return;
        for (GgmlType t : kWeightTypes) {
            const int64_t bs = quant_traits(t).block_size;
            // Three blocks (Q4_0, Q5_0, Q8_0, Q3_K, Q6_K rows then start at odd
            // multiples of 2 bytes), and more parts than a workgroup has
            // invocations; float rows end in a tail shorter than 8.
            const int64_t small = bs == 1 ? 163 : 3 * bs, large = bs == 1 ? 1027 : (bs == 256 ? 17 : 129) * bs;
            for (int64_t n_tok = 1; n_tok <= 4; ++n_tok) {
                check_matvec(*vb, t, small, 37, n_tok);
                check_matvec(*vb, t, large, 5, n_tok);
            }
        }
        // Activations not on a vec4 boundary, and a column offset on one.
        check_matvec(*vb, GgmlType::Q4_0, 96, 9, 2, 1);
        check_matvec(*vb, GgmlType::Q6_K, 256, 9, 3, 4);
    }
}

TEST_CASE("vulkan: the bindings each shader writes, read off its SPIR-V (the stream's barriers rest on them)") {
    auto written = [](const char* name) -> uint32_t {
        for (const vk::SpirvModule& m : vk::spirv_modules())
            if (std::string(m.name) == name) return vk::spirv_written_bindings(m.words, m.n_words);
        FAIL_CHECK("no embedded shader " << name);
        return 0;
    };
    CHECK(written("matvec_q4_0") == 1u << 2);
    CHECK(written("matvec_q6_k_sg") == 1u << 2);
    CHECK(written("rms_norm") == ((1u << 2) | (1u << 3)));  // out and its q8 copy
    CHECK(written("add_rms_norm") == ((1u << 1) | (1u << 2) | (1u << 3)));
    CHECK(written("swiglu_q8") == ((1u << 3) | (1u << 4)));
    CHECK(written("rope_kv_store") == ((1u << 1) | (1u << 3) | (1u << 4) | (1u << 5)));
    CHECK(written("rope") == 1u << 1);
    CHECK(written("kv_store") == 1u << 3);
    // out and its q8 copy, or the splits' partial rows
    CHECK(written("attention_decode_sg") == ((1u << 5) | (1u << 6) | (1u << 7)));
    CHECK(written("attention_decode_rows") == ((1u << 5) | (1u << 6) | (1u << 7)));
    CHECK(written("attention_merge") == ((1u << 5) | (1u << 7)));
    CHECK(written("rms_norm_sg") == ((1u << 2) | (1u << 3)));
    CHECK(written("add") == 1u << 3);
    CHECK(written("to_f16") == 1u << 3);
    CHECK(written("matmul_cm_q4_0") == 1u << 2);
    CHECK(written("matmul_cm64_q6_k") == 1u << 2);
    CHECK(written("matmul_cm_cut_q4_k") == 1u << 2);
    CHECK(written("attention_cm128") == 1u << 5);
    // Every shader writes something, and none writes the weights (binding 0).
    for (const vk::SpirvModule& m : vk::spirv_modules()) {
        const uint32_t w = vk::spirv_written_bindings(m.words, m.n_words);
        CHECK_MESSAGE(w != 0u, m.name);
        CHECK_MESSAGE((w & 1u) == 0u, m.name);
    }
    // A truncated module reads as writing everything (more barriers, never fewer).
    const vk::SpirvModule& any = vk::spirv_modules()[0];
    std::vector<uint32_t> cut(any.words, any.words + any.n_words);
    cut[5] = (cut[5] & 0xFFFFu) | (uint32_t(any.n_words) << 16);
    CHECK(vk::spirv_written_bindings(cut.data(), cut.size()) == ~0u);
}

namespace {
// Activations that 8-bit blocks hold exactly: per 32 elements a power-of-two
// step d and integers in [-127, 127], one of them +-127 (so max|x| / 127 = d).
std::vector<float> q8_exact_floats(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> q(-127, 127), e(3, 9);
    std::vector<float> v(n);
    for (size_t b = 0; b < n; b += 32) {
        const float d = std::ldexp(1.0f, -e(rng));
        for (size_t i = b; i < b + 32; ++i) v[i] = float(q(rng)) * d;
        v[b + rng() % 32] = (rng() & 1u ? 127.0f : -127.0f) * d;
    }
    return v;
}

// |got - want| per (token, row) within the float rounding bound, plus with
// random activations six standard deviations of the q8 rounding: each x_i
// moves by up to d/2 of its block (uniform, variance d^2 / 12) times w_i.
void check_q8_result(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& x,
                     const std::vector<float>& wf, int64_t n_in, int64_t n_out, int64_t n_tok, bool exact, const std::string& what) {
    for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t o = 0; o < n_out; ++o) {
            double var = 0.0;
            for (int64_t b = 0; !exact && b < n_in; b += 32) {
                float amax = 0.0f;
                for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[size_t(t * n_in + i)]));
                const double d = amax / 127.0;
                for (int64_t i = b; i < b + 32; ++i) var += std::pow(wf[size_t(o * n_in + i)] * d, 2) / 12.0;
            }
            const size_t k = size_t(t * n_out + o);
            const double tol = 1e-6 * double(n_in) + 1e-5 * std::fabs(want[k]) + 6.0 * std::sqrt(var);
            if (!(std::fabs(got[k] - want[k]) <= tol)) {
                FAIL_CHECK(what << ": token " << t << " row " << o << " is " << got[k] << ", expected " << want[k] << " within " << tol);
                return;
            }
        }
}

void check_matvec_q8(vk::VulkanBackend& vb, GgmlType type, int64_t n_in, int64_t n_out, int64_t n_tok) {
    const HostWeight hw = make_weight(type, n_in, n_out, 41 + uint32_t(n_in));
    const Weight w = vb.upload_weight(hw.view);
    std::vector<float> wf(size_t(n_in * n_out));
    std::vector<int32_t> all(static_cast<size_t>(n_out));
    for (int64_t o = 0; o < n_out; ++o) all[size_t(o)] = int32_t(o);
    ref::get_rows(hw.view, all, host_act(wf, n_out, n_in));
    for (bool exact : {true, false}) {
        auto x = exact ? q8_exact_floats(size_t(n_tok * n_in), 5 + uint32_t(n_tok)) : random_floats(size_t(n_tok * n_in), 6);
        std::vector<float> want(size_t(n_tok * n_out));
        ref::matmul(hw.view, host_act(x, n_tok, n_in), host_act(want, n_tok, n_out));
        auto dx = device_act(vb, n_tok, n_in, &x);
        auto dy = device_act(vb, n_tok, n_out);
        vb.matmul(w, dx.act(), dy.act());
        check_q8_result(read(vb, dy.act()), want, x, wf, n_in, n_out, n_tok, exact,
                        std::string("int-dot matvec ") + quant_traits(type).name + " n_in " + std::to_string(n_in) + " n_tok " +
                            std::to_string(n_tok) + (exact ? " (q8-exact x)" : " (random x)"));
    }
}
}  // namespace

TEST_CASE("vulkan: integer-dot matvec (q8 activations) of the 32-element formats, both reductions") {
    for (bool sg : {true, false}) {
        auto vb = vulkan_backend(sg, true);
        if (!vb) return;
        if (!vb->device().int_dot()) {
            MESSAGE("skipped: " << vb->device().name() << " lacks VK_KHR_shader_integer_dot_product");
            return;
        }
        for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0})
            for (int64_t n_tok = 1; n_tok <= 4; ++n_tok) {
                check_matvec_q8(*vb, t, 96, 37, n_tok);
                check_matvec_q8(*vb, t, 129 * 32, 5, n_tok);
            }
    }
}

TEST_CASE("vulkan: integer-dot matvec quantizes an input once while it is unchanged, again after any write") {
    auto vb = vulkan_backend(true, true);
    if (!vb || !vb->device().int_dot()) return;
    const int64_t n_in = 256, n_out = 33;
    const HostWeight h1 = make_weight(GgmlType::Q4_0, n_in, n_out, 1), h2 = make_weight(GgmlType::Q8_0, n_in, n_out, 2);
    const Weight w1 = vb->upload_weight(h1.view), w2 = vb->upload_weight(h2.view);
    auto x1 = q8_exact_floats(size_t(n_in), 1), x2 = q8_exact_floats(size_t(n_in), 2);
    auto want = [&](const HostWeight& h, std::vector<float>& x) {
        std::vector<float> y(static_cast<size_t>(n_out));
        ref::matmul(h.view, host_act(x, 1, n_in), host_act(y, 1, n_out));
        return y;
    };
    auto dx = device_act(*vb, 1, n_in, &x1);
    auto y1 = device_act(*vb, 1, n_out), y2 = device_act(*vb, 1, n_out), y3 = device_act(*vb, 1, n_out),
         y4 = device_act(*vb, 1, n_out);
    vb->matmul(w1, dx.act(), y1.act());
    vb->matmul(w2, dx.act(), y2.act());  // the same input: reuses its q8 blocks
    vb->write_act(dx.act(), x2.data());  // a host write
    vb->matmul(w1, dx.act(), y3.act());
    vb->add(dx.act(), dx.act(), dx.act());  // a shader write: x = 2 * x2, still q8-exact
    vb->matmul(w1, dx.act(), y4.act());
    const float tol = 1e-6f * float(n_in);
    check_close(read(*vb, y1.act()), want(h1, x1), tol, 1e-5f, "first input");
    check_close(read(*vb, y2.act()), want(h2, x1), tol, 1e-5f, "first input again");
    check_close(read(*vb, y3.act()), want(h1, x2), tol, 1e-5f, "after write_act");
    for (float& v : x2) v *= 2.0f;
    check_close(read(*vb, y4.act()), want(h1, x2), tol, 1e-5f, "after add");
}

TEST_CASE("vulkan: attention with head sizes off the 16-byte row loads (rows element by element) and on them") {
    auto vb = vulkan_backend();
    if (!vb) return;
    // head_dim 6: rows element by element (attention_decode_rows); 4: F32 rows by 16 bytes,
    // F16 rows element by element; 40: both by 16 bytes.
    for (int head_dim : {6, 4, 40})
        for (GgmlType t : {GgmlType::F16, GgmlType::F32}) {
            const AttentionParams p{6, 3, head_dim, 0.3f};
            const int64_t dim = p.n_head_kv * p.head_dim, n_cells = 140, n_tok = 2;
            HostKv kv(t, n_cells, dim, 1);
            for (int64_t c = 0; c < n_cells; ++c) {
                kv.cell_pos[size_t(c)] = int32_t(c);
                kv.cell_seqs[size_t(c)] = 1u;
            }
            const KvView view = kv.view(n_cells);
            store_random_kv(*vb, view, 0, 31);
            const std::vector<int32_t> pos = {139, 70}, seq = {0, 0};
            auto q = random_floats(size_t(n_tok * p.n_head * head_dim), 33, -3.0f, 3.0f);
            std::vector<float> want(q.size());
            ref::attention(host_act(q, n_tok, p.n_head * head_dim), view, 0, p, pos, seq, host_act(want, n_tok, p.n_head * head_dim));
            auto dq = device_act(*vb, n_tok, p.n_head * head_dim, &q);
            auto dout = device_act(*vb, n_tok, p.n_head * head_dim);
            vb->attention(dq.act(), view, 0, p, pos, seq, dout.act());
            check_close(read(*vb, dout.act()), want, 1e-5f, 1e-4f,
                        "attention head_dim " + std::to_string(head_dim) + (t == GgmlType::F16 ? " f16" : " f32"));
        }
}

TEST_CASE("vulkan: the cooperative-matrix matmul converts an input to f16 once while it is unchanged, again after any write") {
    auto vb = vulkan_backend();
    if (!vb) return;
    if (!vb->device().coopmat()) {
        MESSAGE("skipped: " << vb->device().name() << ": " << vb->device().coopmat_missing());
        return;
    }
    const int64_t n_in = 256, n_out = 33, n_tok = 70;
    const HostWeight h1 = make_weight(GgmlType::Q4_0, n_in, n_out, 1), h2 = make_weight(GgmlType::Q8_0, n_in, n_out, 2);
    const Weight w1 = vb->upload_weight(h1.view), w2 = vb->upload_weight(h2.view);
    auto x1 = random_floats(size_t(n_tok * n_in), 1), x2 = random_floats(size_t(n_tok * n_in), 2);
    auto check = [&](const HostWeight& h, std::vector<float>& x, const DeviceAct& y, const char* what) {
        std::vector<float> want(size_t(n_tok * n_out));
        ref::matmul(h.view, host_act(x, n_tok, n_in), host_act(want, n_tok, n_out));
        check_f16_products(read(*vb, y.act()), want, dequantize(h.view.type, h.bytes.data(), n_in * n_out), x, n_in, n_out,
                           n_tok, what);
    };
    auto dx = device_act(*vb, n_tok, n_in, &x1);
    auto y1 = device_act(*vb, n_tok, n_out), y2 = device_act(*vb, n_tok, n_out), y3 = device_act(*vb, n_tok, n_out),
         y4 = device_act(*vb, n_tok, n_out), y5 = device_act(*vb, n_tok - 1, n_out);
    vb->matmul(w1, dx.act(), y1.act());
    vb->matmul(w2, dx.act(), y2.act());  // the same input: reuses its f16 copy
    vb->write_act(dx.act(), x2.data());  // a host write
    vb->matmul(w1, dx.act(), y3.act());
    vb->add(dx.act(), dx.act(), dx.act());  // a shader write: x = 2 * x2
    vb->matmul(w1, dx.act(), y4.act());
    vb->matmul(w1, dx.act().rows(1, n_tok - 1), y5.act());  // another view of the same buffer
    check(h1, x1, y1, "first input");
    check(h2, x1, y2, "first input again");
    check(h1, x2, y3, "after write_act");
    for (float& v : x2) v *= 2.0f;
    check(h1, x2, y4, "after add");
    std::vector<float> tail(x2.begin() + n_in, x2.end());
    std::vector<float> want(size_t((n_tok - 1) * n_out));
    ref::matmul(h1.view, host_act(tail, n_tok - 1, n_in), host_act(want, n_tok - 1, n_out));
    check_f16_products(read(*vb, y5.act()), want, dequantize(GgmlType::Q4_0, h1.bytes.data(), n_in * n_out), tail, n_in,
                       n_out, n_tok - 1, "rows 1.. of the input");
}
