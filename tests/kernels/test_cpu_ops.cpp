// Every CPU backend op against its scalar reference twin (kernels/cpu/ops_ref),
// for each kernel table this machine can run, on random inputs whose sizes
// leave tails in every loop (rows % 16, tokens % 3, columns % 8).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/fp16.h"
#include "formats/quant_traits.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/ops_ref.h"

using namespace kiln;

namespace {

std::vector<const cpu::CpuKernels*> kernel_tables() { return cpu::runnable_kernels(); }

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// A dense host activation matrix with a padded stride, as backends make them.
struct HostAct {
    std::vector<float> mem;
    Act act;
    HostAct(int64_t rows, int64_t cols, uint32_t seed = 0) : mem(size_t(rows * (cols + 3)), 0.0f) {
        act = Act{mem.data(), rows, cols, cols + 3};
        if (seed) {
            auto r = random_floats(size_t(rows * cols), seed);
            for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) act.row(i)[j] = r[size_t(i * cols + j)];
        }
    }
};

// |a - b| within tol relative to the scale of the values compared.
void check_close(const Act& a, const Act& b, float rel, const std::string& what) {
    float max_abs = 0.0f, max_err = 0.0f;
    for (int64_t i = 0; i < a.n_rows; ++i)
        for (int64_t j = 0; j < a.n_cols; ++j) {
            REQUIRE(std::isfinite(a.row(i)[j]));
            max_abs = std::max(max_abs, std::fabs(b.row(i)[j]));
            max_err = std::max(max_err, std::fabs(a.row(i)[j] - b.row(i)[j]));
        }
    INFO(what << ": max error " << max_err << " for values up to " << max_abs);
    CHECK(max_err <= rel * std::max(1.0f, max_abs));
}

// Quantized weights multiply activations rounded to 8-bit blocks (q8_act.h):
// each activation moves by at most half a step, amax/254 of its block (plus the
// fp16 rounding of the block scale), so y moves by at most sum |w| * that step.
void check_within_activation_rounding(const TensorView& w, const Act& x, const Act& y, const Act& y_ref, int64_t block,
                                      const std::string& what) {
    const int64_t n_in = w.ne[0];
    std::vector<float> row(static_cast<size_t>(n_in));
    int bad = 0;
    for (int64_t o = 0; o < w.n_rows(); ++o) {
        ref::dequantize_row(w, o, row.data());
        for (int64_t t = 0; t < x.n_rows; ++t) {
            double bound = 1e-4;
            for (int64_t b = 0; b < n_in / block; ++b) {
                double amax = 0.0, wsum = 0.0;
                for (int64_t i = b * block; i < (b + 1) * block; ++i) {
                    amax = std::max(amax, double(std::fabs(x.row(t)[i])));
                    wsum += std::fabs(row[size_t(i)]);
                }
                bound += wsum * amax / 127.0 * (0.5 + 127.0 / 1024.0);
            }
            if (!(std::fabs(double(y.row(t)[o]) - double(y_ref.row(t)[o])) <= bound)) ++bad;
        }
    }
    INFO(what);
    CHECK(bad == 0);
}

struct QuantWeight {
    std::vector<uint8_t> bytes;
    TensorView view;
};

QuantWeight make_weight(const QuantTraits& qt, int64_t n_in, int64_t n_out, uint32_t seed) {
    const auto f = random_floats(size_t(n_in * n_out), seed, 0.5f);
    QuantWeight w;
    w.bytes = quantize(qt.type, f.data(), n_in * n_out);
    const size_t row_bytes = size_t(n_in / qt.block_size) * qt.block_bytes;
    REQUIRE(w.bytes.size() == row_bytes * size_t(n_out));
    w.view.data = w.bytes.data();
    w.view.type = qt.type;
    w.view.ne[0] = n_in;
    w.view.ne[1] = n_out;
    w.view.nb[0] = qt.block_bytes;
    w.view.nb[1] = row_bytes;
    w.view.nb[2] = w.view.nb[3] = row_bytes * size_t(n_out);
    return w;
}

}  // namespace

TEST_CASE("cpu matmul matches the reference for every weight type, one token and batches") {
    int n_types = 0;
    for (const QuantTraits& qt : all_quant_traits()) {
        if (!qt.dequantize || !qt.quantize) continue;
        ++n_types;
        const int64_t n_in = qt.block_size == 1 ? 75 : qt.block_size * 3;
        const int64_t n_out = 37;  // two full 16-row tiles and a tail of 5
        QuantWeight w = make_weight(qt, n_in, n_out, 7u + uint32_t(qt.type));
        for (const auto* k : kernel_tables())
            for (int threads : {1, 2}) {
                cpu::CpuBackend be(threads, *k);
                const Weight wt = be.upload_weight(w.view);
                for (int64_t n_tok : {1, 2, 7, 70}) {
                    HostAct x(n_tok, n_in, 11), y(n_tok, n_out), y_ref(n_tok, n_out);
                    be.matmul(wt, x.act, y.act);
                    ref::matmul(w.view, x.act, y_ref.act);
                    const std::string what = std::string(qt.name) + " " + k->isa + " tokens=" + std::to_string(n_tok) +
                                             " threads=" + std::to_string(threads);
                    if (cpu::int_dot_slot(qt.type) < 0)
                        check_close(y.act, y_ref.act, 1e-4f, what);
                    else
                        check_within_activation_rounding(w.view, x.act, y.act, y_ref.act,
                                                         cpu::act_block_size(cpu::kIntDotTypes[cpu::int_dot_slot(qt.type)].act), what);
                }
            }
    }
    CHECK(n_types >= 10);  // f32, f16, bf16, q4_0 ... q6_K at least
}

TEST_CASE("cpu get_rows dequantizes the same rows as the reference") {
    for (const QuantTraits& qt : all_quant_traits()) {
        if (!qt.dequantize || !qt.quantize) continue;
        const int64_t n_in = qt.block_size == 1 ? 19 : qt.block_size * 2;
        QuantWeight w = make_weight(qt, n_in, 9, 3);
        cpu::CpuBackend be(1);
        const std::vector<int32_t> ids{8, 0, 3, 3};
        HostAct out(4, n_in), out_ref(4, n_in);
        be.get_rows(be.upload_weight(w.view), ids, out.act);
        ref::get_rows(w.view, ids, out_ref.act);
        check_close(out.act, out_ref.act, 0.0f, qt.name);
        CHECK_THROWS_AS(be.get_rows(be.upload_weight(w.view), std::vector<int32_t>{9, 0, 0, 0}, out.act), BackendError);
    }
}

TEST_CASE("cpu rms_norm, swiglu, add, softmax, copy_rows match the reference") {
    for (const auto* k : kernel_tables()) {
        cpu::CpuBackend be(2, *k);
        const int64_t rows = 5, cols = 77;
        HostAct x(rows, cols, 1), y(rows, cols, 2), out(rows, cols), out_ref(rows, cols);
        auto wv = random_floats(size_t(cols), 3);
        TensorView wt;
        wt.data = wv.data();
        wt.type = GgmlType::F32;
        wt.ne[0] = cols;
        wt.nb[0] = 4;
        wt.nb[1] = wt.nb[2] = wt.nb[3] = size_t(cols) * 4;
        be.rms_norm(x.act, be.upload_weight(wt), 1e-5f, out.act);
        ref::rms_norm(x.act, wv.data(), 1e-5f, out_ref.act);
        check_close(out.act, out_ref.act, 1e-5f, std::string("rms_norm ") + k->isa);

        be.swiglu(x.act, y.act, out.act);
        ref::swiglu(x.act, y.act, out_ref.act);
        check_close(out.act, out_ref.act, 1e-6f, "swiglu");

        be.add(x.act, y.act, out.act);
        ref::add(x.act, y.act, out_ref.act);
        check_close(out.act, out_ref.act, 0.0f, "add");

        HostAct s(rows, cols, 4), s_ref(rows, cols, 4);
        be.softmax(s.act);
        ref::softmax(s_ref.act);
        check_close(s.act, s_ref.act, 1e-6f, "softmax");
        for (int64_t r = 0; r < rows; ++r) {
            float sum = 0.0f;
            for (int64_t c = 0; c < cols; ++c) sum += s.act.row(r)[c];
            CHECK(sum == doctest::Approx(1.0f).epsilon(1e-5));
        }

        const std::vector<int32_t> pick{4, 1};
        HostAct c(2, cols), c_ref(2, cols);
        be.copy_rows(x.act, pick, c.act);
        ref::copy_rows(x.act, pick, c_ref.act);
        check_close(c.act, c_ref.act, 0.0f, "copy_rows");
        CHECK(c.act.row(0)[5] == x.act.row(4)[5]);
    }
}

TEST_CASE("rope rotates pairs by pos * base^(-2i/n_rot) and matches the reference") {
    cpu::CpuBackend be(1);
    SUBCASE("closed form, normal mode, partial rotation") {
        HostAct x(2, 12, 5);
        HostAct orig = x;
        orig.act.data = orig.mem.data();
        RopeParams p;
        p.n_rot = 4;  // of head_dim 6: dims 4, 5 of each head stay as they are
        p.freq_base = 10000.0f;
        const std::vector<int32_t> pos{0, 7};
        be.rope(x.act, 2, 6, pos, p);
        for (int64_t t = 0; t < 2; ++t)
            for (int h = 0; h < 2; ++h)
                for (int i = 0; i < 3; ++i) {
                    const float* a = orig.act.row(t) + h * 6;
                    const float* b = x.act.row(t) + h * 6;
                    if (i == 2) {
                        CHECK(b[4] == a[4]);
                        CHECK(b[5] == a[5]);
                        continue;
                    }
                    const double th = pos[size_t(t)] * std::pow(10000.0, -2.0 * i / 4.0);
                    CHECK(b[2 * i] == doctest::Approx(a[2 * i] * std::cos(th) - a[2 * i + 1] * std::sin(th)).epsilon(1e-5));
                    CHECK(b[2 * i + 1] == doctest::Approx(a[2 * i] * std::sin(th) + a[2 * i + 1] * std::cos(th)).epsilon(1e-5));
                }
    }
    SUBCASE("every mode and scaling against the reference") {
        std::vector<float> factors{1.0f, 2.0f, 4.0f, 8.0f, 1.5f};
        for (auto mode : {RopeParams::Mode::Normal, RopeParams::Mode::Neox})
            for (int scaling = 0; scaling < 4; ++scaling) {
                RopeParams p;
                p.mode = mode;
                p.n_rot = 10;
                p.freq_base = 500000.0f;
                if (scaling == 1) p.freq_scale = 0.25f;
                if (scaling == 2) {
                    p.freq_scale = 0.125f;
                    p.ext_factor = 1.0f;
                    p.attn_factor = 1.0f;
                    p.n_ctx_orig = 4096;
                }
                if (scaling == 3) p.freq_factors = factors.data();
                HostAct x(3, 3 * 14, 9), x_ref(3, 3 * 14, 9);
                const std::vector<int32_t> pos{1, 100, 3000};
                be.rope(x.act, 3, 14, pos, p);
                ref::rope(x_ref.act, 3, 14, pos, p);
                check_close(x.act, x_ref.act, 1e-6f, "rope scaling " + std::to_string(scaling));
            }
    }
}

TEST_CASE("cpu kv_store and attention match the reference (F16 and F32 cache, GQA, two sequences)") {
    const int n_head = 4, n_head_kv = 2, head_dim = 13;
    const int64_t n_kv_dim = n_head_kv * head_dim, n_cells = 41;
    // Layout 0: runs of tokens per sequence (prompt chunks); layout 1: a decode step
    // of interleaved sequences, one token each (the one-token attention path).
    for (int layout = 0; layout < 2; ++layout)
    for (GgmlType kv_type : {GgmlType::F16, GgmlType::F32})
        for (const auto* k : kernel_tables()) {
            const size_t elem = kv_type == GgmlType::F16 ? 2 : 4;
            std::vector<uint8_t> kmem(size_t(n_cells * n_kv_dim) * elem), vmem(kmem.size());
            std::vector<uint8_t> kmem_ref(kmem.size()), vmem_ref(kmem.size());
            std::vector<int32_t> cell_pos(size_t(n_cells), -1);
            std::vector<uint64_t> cell_seqs(size_t(n_cells), 0);
            // Cells 0..34 hold earlier tokens of sequences 0 and 1 (some shared), a few empty.
            for (int c = 0; c < 35; ++c) {
                if (c % 7 == 3) continue;
                cell_pos[size_t(c)] = c / 2;
                cell_seqs[size_t(c)] = c % 5 == 0 ? 3u : (1u << (c % 2));
            }
            const std::vector<int32_t> pos = layout == 0 ? std::vector<int32_t>{17, 18, 19, 5, 0}
                                                         : std::vector<int32_t>{17, 5, 18, 6, 19};
            const std::vector<int32_t> seq = layout == 0 ? std::vector<int32_t>{0, 0, 0, 1, 1}
                                                         : std::vector<int32_t>{0, 1, 0, 1, 0};
            const std::vector<int32_t> cells{35, 36, 37, 38, 40};
            const int64_t n_tok = int64_t(cells.size());
            for (size_t t = 0; t < cells.size(); ++t) {
                cell_pos[size_t(cells[t])] = pos[t];
                cell_seqs[size_t(cells[t])] = uint64_t(1) << seq[t];
            }
            // Random old contents for the earlier cells.
            auto fill = random_floats(kmem.size(), 21);
            for (size_t i = 0; i < kmem.size(); ++i) kmem[i] = kmem_ref[i] = uint8_t(int(fill[i] * 40) & 0x3f);
            for (size_t i = 0; i < vmem.size(); ++i) vmem[i] = vmem_ref[i] = uint8_t(int(fill[i] * 30) & 0x3f);

            std::vector<KvLayerView> layers{{kmem.data(), vmem.data()}}, layers_ref{{kmem_ref.data(), vmem_ref.data()}};
            KvView kv{kv_type, n_cells, n_kv_dim, layers, cell_pos.data(), cell_seqs.data(), n_cells};
            KvView kv_ref = kv;
            kv_ref.layers = layers_ref;

            cpu::CpuBackend be(2, *k);
            HostAct kk(n_tok, n_kv_dim, 31), vv(n_tok, n_kv_dim, 32), q(n_tok, n_head * head_dim, 33);
            be.kv_store(kv, 0, kk.act, vv.act, cells);
            ref::kv_store(kv_ref, 0, kk.act, vv.act, cells);
            CHECK(kmem == kmem_ref);
            CHECK(vmem == vmem_ref);

            const AttentionParams ap{n_head, n_head_kv, head_dim, 1.0f / std::sqrt(float(head_dim))};
            HostAct out(n_tok, n_head * head_dim), out_ref(n_tok, n_head * head_dim);
            be.attention(q.act, kv, 0, ap, pos, seq, out.act);
            ref::attention(q.act, kv_ref, 0, ap, pos, seq, out_ref.act);
            check_close(out.act, out_ref.act, 1e-5f, std::string("attention ") + k->isa + " layout " + std::to_string(layout));
        }
}

TEST_CASE("attention of a token that sees only itself returns its own value row") {
    const int head_dim = 8;
    std::vector<float> kmem(4 * head_dim, 0.0f), vmem(4 * head_dim, 0.0f);
    std::vector<int32_t> cell_pos{-1, -1, 0, -1};
    std::vector<uint64_t> cell_seqs{0, 0, 1, 0};
    std::vector<KvLayerView> layers{{kmem.data(), vmem.data()}};
    KvView kv{GgmlType::F32, 4, head_dim, layers, cell_pos.data(), cell_seqs.data(), 3};
    cpu::CpuBackend be(1);
    HostAct q(1, head_dim, 1), k(1, head_dim, 2), v(1, head_dim, 3), out(1, head_dim);
    be.kv_store(kv, 0, k.act, v.act, std::vector<int32_t>{2});
    be.attention(q.act, kv, 0, AttentionParams{1, 1, head_dim, 0.3f}, std::vector<int32_t>{0}, std::vector<int32_t>{0}, out.act);
    for (int d = 0; d < head_dim; ++d) CHECK(out.act.row(0)[d] == doctest::Approx(v.act.row(0)[d]));
}

TEST_CASE("matmul rejects mismatched shapes instead of reading out of bounds") {
    cpu::CpuBackend be(1);
    std::vector<float> w(6 * 4, 1.0f);
    TensorView tv;
    tv.data = w.data();
    tv.type = GgmlType::F32;
    tv.ne[0] = 4;
    tv.ne[1] = 6;
    tv.nb[0] = 4;
    tv.nb[1] = 16;
    const Weight wt = be.upload_weight(tv);
    HostAct x(2, 5), y(2, 6);
    CHECK_THROWS_AS(be.matmul(wt, x.act, y.act), BackendError);
}

TEST_CASE("exp_sum and swiglu kernels follow std::exp across the float range") {
    std::vector<float> x;
    for (float v = -100.0f; v <= 88.0f; v += 0.37f) x.push_back(v);
    x.push_back(-INFINITY);
    x.push_back(0.0f);
    for (const auto* k : kernel_tables()) {
        INFO(k->isa);
        std::vector<float> e = x;
        const float sum = k->exp_sum_f32(e.data(), int64_t(e.size()), 1.5f);
        double want_sum = 0.0;
        for (size_t i = 0; i < x.size(); ++i) {
            const double want = std::exp(double(x[i] - 1.5f));  // the kernel's argument, rounded as it is
            want_sum += want;
            CHECK(std::fabs(e[i] - want) <= 1e-6 * want + 1e-37);  // absolute below: subnormals
        }
        CHECK(std::fabs(sum - want_sum) <= 1e-5 * want_sum);
        std::vector<float> up(x.size(), 0.5f), out(x.size());
        k->swiglu_f32(x.data(), up.data(), out.data(), int64_t(x.size()) - 1);  // all but the trailing 0
        for (size_t i = 0; i + 1 < x.size(); ++i) {
            if (std::isinf(x[i])) continue;
            const double g = x[i], want = g / (1.0 + std::exp(-g)) * 0.5;
            CHECK(std::fabs(out[i] - want) <= 1e-6 * std::max(1.0, std::fabs(want)));
        }
    }
}

TEST_CASE("cpu attention over a prompt: several token chunks, heads wider than one 16-value tile") {
    const int n_head = 6, n_head_kv = 2, head_dim = 37;
    const int64_t n_kv_dim = n_head_kv * head_dim, n_tok = 75, n_cells = 90;
    for (const auto* k : kernel_tables()) {
        std::vector<float> kmem(size_t(n_cells * n_kv_dim), 0.0f), vmem(kmem.size(), 0.0f);
        std::vector<int32_t> cell_pos(size_t(n_cells), -1);
        std::vector<uint64_t> cell_seqs(size_t(n_cells), 0);
        std::vector<int32_t> pos(static_cast<size_t>(n_tok)), seq(static_cast<size_t>(n_tok), 0), cells(static_cast<size_t>(n_tok));
        // Cells 0..2 hold an earlier prefix; the prompt continues at position 3, cell 3 left empty.
        for (int c = 0; c < 3; ++c) {
            cell_pos[size_t(c)] = c;
            cell_seqs[size_t(c)] = 1;
        }
        for (int64_t t = 0; t < n_tok; ++t) {
            pos[size_t(t)] = int32_t(3 + t);
            cells[size_t(t)] = int32_t(4 + t);
            cell_pos[size_t(4 + t)] = pos[size_t(t)];
            cell_seqs[size_t(4 + t)] = 1;
        }
        auto old = random_floats(size_t(3 * n_kv_dim), 41);
        std::copy(old.begin(), old.end(), kmem.begin());
        std::copy(old.begin(), old.end(), vmem.begin());
        std::vector<KvLayerView> layers{{kmem.data(), vmem.data()}};
        KvView kv{GgmlType::F32, n_cells, n_kv_dim, layers, cell_pos.data(), cell_seqs.data(), n_cells};
        cpu::CpuBackend be(2, *k);
        HostAct kk(n_tok, n_kv_dim, 42), vv(n_tok, n_kv_dim, 43), q(n_tok, n_head * head_dim, 44);
        be.kv_store(kv, 0, kk.act, vv.act, cells);
        const AttentionParams ap{n_head, n_head_kv, head_dim, 1.0f / std::sqrt(float(head_dim))};
        HostAct out(n_tok, n_head * head_dim), out_ref(n_tok, n_head * head_dim);
        be.attention(q.act, kv, 0, ap, pos, seq, out.act);
        ref::attention(q.act, kv, 0, ap, pos, seq, out_ref.act);
        check_close(out.act, out_ref.act, 1e-5f, std::string("prompt attention ") + k->isa);
    }
}

TEST_CASE("f32_to_f16 kernels round like formats/fp16 (ties, subnormals, overflow, infinities)") {
    std::vector<float> x{0.0f, -0.0f, 1.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65520.0f, 1e6f, -1e6f,
                         6e-8f, 3e-8f, 1e-5f, -2.5e-6f, INFINITY, -INFINITY, 0.1f, -123.456f};
    const auto r = random_floats(45, 77, 100.0f);
    x.insert(x.end(), r.begin(), r.end());
    for (const auto* k : kernel_tables()) {
        std::vector<uint16_t> h(x.size());
        k->f32_to_f16(x.data(), h.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); ++i) {
            INFO(k->isa << " value " << x[i]);
            CHECK(h[i] == fp32_to_fp16(x[i]));
        }
    }
}
