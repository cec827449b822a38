// Every CUDA kernel against the CPU reference op (kernels/cpu/ops_ref) on
// random inputs whose sizes leave tails: output rows not a multiple of the
// warps per block or of the 64-row MMA tile, token counts on both sides of the
// matrix-vector / tensor-core switch, row lengths not a multiple of the MMA
// step, KV scans not a multiple of the warps.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_test_util.h"
#include "formats/fp16.h"
#include "formats/quant_traits.h"
#include "kernels/cpu/ops_ref.h"
#include "kernels/cuda/cuda_ops.h"

using namespace kiln;
using namespace kiln::test;

namespace {

// The CUDA result differs from the reference by rounding the activations (to
// int8 per 32 values on the matrix-vector path of quantized weights, to F16 on
// the tensor-core path): bound each output by a fraction of sum |w_i x_i|,
// which a wrong element order or scale exceeds many times over.
void check_matmul(cuda::CudaBackend& cb, GgmlType type, int64_t n_in, int64_t n_out, int64_t n_tok) {
    const HostWeight hw = make_weight(type, n_in, n_out, 7 + uint32_t(type));
    const Weight w = cb.upload_weight(hw.view);
    auto x = random_floats(size_t(n_tok * n_in), 11 + uint32_t(n_tok));
    std::vector<float> want(size_t(n_tok * n_out)), mag(want.size());
    ref::matmul(hw.view, host_act(x, n_tok, n_in), host_act(want, n_tok, n_out));
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t o = 0; o < n_out; ++o) {
        ref::dequantize_row(hw.view, o, row.data());
        for (int64_t t = 0; t < n_tok; ++t) {
            float m = 0.0f;
            for (int64_t i = 0; i < n_in; ++i) m += std::fabs(row[size_t(i)] * x[size_t(t * n_in + i)]);
            mag[size_t(t * n_out + o)] = m;
        }
    }
    auto dx = device_act(cb, n_tok, n_in, &x);
    auto dy = device_act(cb, n_tok, n_out);
    cb.matmul(w, dx.act(), dy.act());
    const auto got = read(cb, dy.act());
    const bool q8 = n_tok <= cuda::kMatvecMaxTokens && cuda::matvec_q8_supported(type);
    const bool f16 = n_tok > cuda::kMatvecMaxTokens;
    const float frac = q8 ? 8e-3f : (f16 ? 2e-3f : 1e-5f);
    const std::string what = std::string("matmul ") + quant_traits(type).name + " n_in " + std::to_string(n_in) +
                             " n_out " + std::to_string(n_out) + " n_tok " + std::to_string(n_tok);
    double err2 = 0, ref2 = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const float tol = frac * mag[i] + 1e-5f;
        if (!(std::fabs(got[i] - want[i]) <= tol)) {
            FAIL_CHECK(what << ": element " << i << " is " << got[i] << ", expected " << want[i] << " (tolerance " << tol << ")");
            return;
        }
        err2 += double(got[i] - want[i]) * (got[i] - want[i]);
        ref2 += double(want[i]) * want[i];
    }
    // And in the aggregate, far tighter than the per-element bound.
    CHECK_MESSAGE(std::sqrt(err2 / ref2) < (q8 ? 2e-2 : (f16 ? 4e-3 : 1e-5)), what << ": relative error " << std::sqrt(err2 / ref2));
}

}  // namespace

TEST_CASE("cuda: device list and a missing device index") {
    const auto devs = cuda::cuda_list_devices();
    REQUIRE(!devs.empty());
    CHECK(devs[0].total_bytes > 0);
    CHECK(devs[0].cc_major >= 8);
    cuda::CudaOptions o;
    o.device = int(devs.size());
    CHECK_THROWS_WITH_AS(cuda::CudaBackend{o}, doctest::Contains("does not exist"), cuda::CudaError);
}

TEST_CASE("cuda: memory bandwidth: both rates plausible, a missing device an error") {
    const cuda::CudaBandwidth bw = cuda::cuda_measure_bandwidth(0, size_t(256) << 20, 3);
    MESSAGE("read " << bw.read_bytes_per_second / 1e9 << " GB/s, copy " << bw.copy_bytes_per_second / 1e9 << " GB/s");
    // Every GPU kiln runs on (sm_80+) moves well over 100 GB/s and none yet 20 TB/s;
    // a buffer of 256 MiB is far past any L2, so a cached re-read cannot inflate it.
    CHECK(bw.buffer_bytes == size_t(256) << 20);
    CHECK(bw.read_bytes_per_second > 100e9);
    CHECK(bw.read_bytes_per_second < 20e12);
    CHECK(bw.copy_bytes_per_second > 100e9);
    CHECK(bw.copy_bytes_per_second < 20e12);
    CHECK_THROWS_WITH_AS(cuda::cuda_measure_bandwidth(int(cuda::cuda_list_devices().size())),
                         doctest::Contains("does not exist"), cuda::CudaError);
}

TEST_CASE("cuda: uploaded weights take their GGUF bytes, Q3_K and Q6_K blocks padded to 112 and 224") {
    CHECK(cuda::CudaBackend::weight_bytes(GgmlType::Q4_0, 32 * 6) == 6 * 18);
    CHECK(cuda::CudaBackend::weight_bytes(GgmlType::Q3_K, 256 * 7) == 7 * 112);
    CHECK(cuda::CudaBackend::weight_bytes(GgmlType::Q4_K, 256 * 3) == 3 * 144);
    CHECK(cuda::CudaBackend::weight_bytes(GgmlType::Q6_K, 256 * 5) == 5 * 224);
    CHECK(cuda::CudaBackend::weight_bytes(GgmlType::F16, 100) == 200);
}

TEST_CASE("cuda: matmul of every weight type, decode (1..8 tokens) and batch (tensor cores)") {
    auto cb = cuda_backend();
    if (!cb) return;
    for (GgmlType t : kWeightTypes) {
        const bool k = quant_traits(t).block_size == 256;
        const int64_t n_in = k ? 768 : 160;  // 160: the MMA's 64-wide steps end half full
        for (int64_t n_tok : {1, 3, 8, 9, 70}) check_matmul(*cb, t, n_in, 37, n_tok);
        check_matmul(*cb, t, n_in, 130, 1);
        check_matmul(*cb, t, n_in, 130, 65);
    }
    // Rows of 257 chunks: decode splits each row over two warps (uneven halves), and the
    // last block of 37 rows holds a row pair with one row and one with none.
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q5_1, GgmlType::Q8_0})
        for (int64_t n_tok : {1, 4}) check_matmul(*cb, t, 8224, 37, n_tok);
    // Few tiles over long rows: the tensor-core product split over k (up to 16 ways, partial
    // sums added in a second kernel), narrow and wide tiles, a split shorter than the rest.
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q6_K, GgmlType::F16})
        for (int64_t n_tok : {16, 100}) check_matmul(*cb, t, 4096 + 256, 70, n_tok);
    // Many tiles of the 128-token-wide kernel (over 64 tokens), with tails in outputs and tokens.
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::F16}) check_matmul(*cb, t, 256, 1000, 300);
    // Float rows whose length is no multiple of 8 or 32 (stories260K's 172).
    for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16})
        for (int64_t n_tok : {1, 5, 33}) check_matmul(*cb, t, 172, 64, n_tok);
}

// Decode: rms_norm and swiglu hand the next matmul their output already quantized;
// the product must be bit for bit what it is when the matmul quantizes the same rows.
TEST_CASE("cuda: rms_norm and swiglu outputs quantized on the way feed matmul as the quantize kernel would") {
    auto cb = cuda_backend();
    if (!cb) return;
    for (int64_t cols : {4096, 96, 5120})
        for (int64_t rows : {1, 3, 8}) {
            const HostWeight hw = make_weight(GgmlType::Q4_K, cols < 256 ? 256 : cols, 40, 3);
            const HostWeight hq = make_weight(GgmlType::Q4_0, cols, 40, 4);
            const Weight w = cb->upload_weight((cols < 256 ? hq : hw).view);
            auto x = random_floats(size_t(rows * cols), 5, -4.0f, 4.0f), u = random_floats(size_t(rows * cols), 6);
            auto wv = random_floats(size_t(cols), 2);
            const Weight norm = upload_vector(*cb, wv);
            auto dx = device_act(*cb, rows, cols, &x), du = device_act(*cb, rows, cols, &u);
            auto dn = device_act(*cb, rows, cols), dcopy = device_act(*cb, rows, cols);
            auto y_fused = device_act(*cb, rows, 40), y_plain = device_act(*cb, rows, 40);
            std::vector<int32_t> all;
            for (int64_t r = 0; r < rows; ++r) all.push_back(int32_t(r));
            const std::string what = std::to_string(rows) + "x" + std::to_string(cols);
            for (bool swiglu : {false, true}) {
                if (swiglu)
                    cb->swiglu(dx.act(), du.act(), dn.act());
                else
                    cb->rms_norm(dx.act(), norm, 1e-5f, dn.act());
                cb->matmul(w, dn.act(), y_fused.act());
                cb->copy_rows(dn.act(), all, dcopy.act());
                cb->matmul(w, dcopy.act(), y_plain.act());
                const auto a = read(*cb, y_fused.act()), b = read(*cb, y_plain.act());
                CHECK_MESSAGE(std::memcmp(a.data(), b.data(), a.size() * 4) == 0, (swiglu ? "swiglu " : "rms_norm ") << what);
            }
        }
}

// matmul_n stacks runs of one weight type into one launch: each output must be
// bit for bit the separate matmul's, for decode and prompt batches.
TEST_CASE("cuda: matmul_n (stacked launches, decode and tensor cores) equals separate matmuls") {
    auto cb = cuda_backend();
    if (!cb) return;
    const HostWeight a = make_weight(GgmlType::Q4_K, 512, 48, 1), b = make_weight(GgmlType::Q4_K, 512, 17, 2),
                     c = make_weight(GgmlType::Q6_K, 512, 33, 3), d = make_weight(GgmlType::Q4_0, 512, 40, 4),
                     e = make_weight(GgmlType::F16, 512, 9, 5);
    const Weight wa = cb->upload_weight(a.view), wb = cb->upload_weight(b.view), wc = cb->upload_weight(c.view),
                 wd = cb->upload_weight(d.view), we = cb->upload_weight(e.view);
    const std::vector<std::vector<const Weight*>> groups = {
        {&wa, &wb, &wc}, {&wd, &wd, &wd}, {&wa, &wb, &wa}, {&wd, &we}, {&wc}};
    for (int64_t n_tok : {1, 5, 8, 40, 130})  // 40, 130: one and two token tiles of the tensor-core path
        for (const auto& g : groups) {
            auto x = random_floats(size_t(n_tok * 512), 8 + uint32_t(n_tok));
            auto dx = device_act(*cb, n_tok, 512, &x);
            std::vector<ActBuffer> fused, plain;
            std::vector<Act> outs;
            for (const Weight* w : g) {
                fused.push_back(device_act(*cb, n_tok, w->n_out()));
                plain.push_back(device_act(*cb, n_tok, w->n_out()));
                outs.push_back(fused.back().act());
            }
            cb->matmul_n(dx.act(), g, outs);
            for (size_t i = 0; i < g.size(); ++i) cb->matmul(*g[i], dx.act(), plain[i].act());
            for (size_t i = 0; i < g.size(); ++i) {
                const auto got = read(*cb, fused[i].act()), want = read(*cb, plain[i].act());
                if (n_tok <= cuda::kMatvecMaxTokens) {  // decode: the same bits
                    CHECK_MESSAGE(std::memcmp(got.data(), want.data(), got.size() * 4) == 0,
                                  "output " << i << " of " << g.size() << ", " << n_tok << " tokens");
                    continue;
                }
                // Tensor cores: a group may split k differently (the same sums in another order).
                float peak = 0.0f;
                for (float v : want) peak = std::max(peak, std::fabs(v));
                for (size_t e = 0; e < got.size(); ++e)
                    if (!(std::fabs(got[e] - want[e]) <= 1e-5f * peak)) {
                        FAIL_CHECK("output " << i << " of " << g.size() << ", " << n_tok << " tokens: element " << e
                                             << " is " << got[e] << ", alone " << want[e]);
                        break;
                    }
            }
        }
    auto x = device_act(*cb, 1, 512);
    auto y = device_act(*cb, 1, 48);
    const Weight* one[] = {&wa};
    CHECK_THROWS_AS(cb->matmul_n(x.act(), one, std::vector<Act>{}), BackendError);
    const Weight* wrong[] = {&wb};
    CHECK_THROWS_AS(cb->matmul_n(x.act(), wrong, std::vector<Act>{y.act()}), BackendError);
}

// add_rms_norm is add then rms_norm in one pass: the same bits in x and out.
TEST_CASE("cuda: add_rms_norm equals add then rms_norm") {
    auto cb = cuda_backend();
    if (!cb) return;
    for (int64_t cols : {4096, 300, 5120, 9000, 7})
        for (int64_t rows : {1, 8, 37}) {
            auto x = random_floats(size_t(rows * cols), 1, -4.0f, 4.0f), r = random_floats(size_t(rows * cols), 3);
            auto wv = random_floats(size_t(cols), 2);
            const Weight w = upload_vector(*cb, wv);
            auto x1 = device_act(*cb, rows, cols, &x), x2 = device_act(*cb, rows, cols, &x);
            auto dr = device_act(*cb, rows, cols, &r);
            auto o1 = device_act(*cb, rows, cols), o2 = device_act(*cb, rows, cols);
            cb->add_rms_norm(x1.act(), dr.act(), w, 1e-5f, o1.act());
            cb->add(x2.act(), dr.act(), x2.act());
            cb->rms_norm(x2.act(), w, 1e-5f, o2.act());
            const std::string what = std::to_string(rows) + "x" + std::to_string(cols);
            const auto a1 = read(*cb, x1.act()), a2 = read(*cb, x2.act()), b1 = read(*cb, o1.act()),
                       b2 = read(*cb, o2.act());
            CHECK_MESSAGE(std::memcmp(a1.data(), a2.data(), a1.size() * 4) == 0, "sum " << what);
            CHECK_MESSAGE(std::memcmp(b1.data(), b2.data(), b1.size() * 4) == 0, "norm " << what);
        }
}

// A decode step's norm folded into the products on either side of it (cuda_ops.h,
// NormOut and NormIn) against the same call's default (matmul, add_rms_norm,
// matmul_n) on the same backend: the residual row up to rounding, the outputs up
// to the q8 rounding of the normed row, which is taken
// before the norm's scale instead of after. Shapes reach both launch variants of
// the producer (long rows split over two warps or not; 4096 rows is 128 blocks, one
// wave on an H100 or H200, the largest that folds there) and the consumer gets runs
// of two types; each call twice (the same bits).
TEST_CASE("cuda: matmul_add_rms_norm_matmul_n folded for one token equals the ops one by one") {
    auto cb = cuda_backend();
    if (!cb) return;
    // The consumers: two weights of type cons, then one of type last. The pairs of
    // a K-quant mix's Q, K and V (Q4_K then Q6_K, Q3_K then Q4_K, ...) of more than
    // 4096 rows take one launch of two types (matvec_q8_two), the rest one launch a type.
    struct Case {
        GgmlType prod, cons;
        int64_t n_embd, n_in;
        GgmlType last = GgmlType::Q8_0;
        int64_t rows1 = 96, rows2 = 160, rows3 = 64;
    };
    const Case cases[] = {{GgmlType::Q4_0, GgmlType::Q4_0, 512, 512},   {GgmlType::Q4_0, GgmlType::Q4_K, 4096, 8288},
                          {GgmlType::Q4_K, GgmlType::Q6_K, 4096, 8448}, {GgmlType::Q4_K, GgmlType::Q4_K, 1024, 8448},
                          {GgmlType::Q6_K, GgmlType::Q5_K, 256, 8448},  {GgmlType::Q8_0, GgmlType::Q8_0, 2048, 2048},
                          {GgmlType::Q5_0, GgmlType::Q2_K, 768, 4096},  {GgmlType::Q3_K, GgmlType::Q4_1, 512, 1280},
                          {GgmlType::Q4_0, GgmlType::Q4_K, 1024, 1024, GgmlType::Q6_K, 4096, 4096, 4096},
                          {GgmlType::Q4_K, GgmlType::Q5_K, 512, 2048, GgmlType::Q6_K, 2048, 1024, 1544},
                          {GgmlType::Q4_0, GgmlType::Q3_K, 768, 768, GgmlType::Q4_K, 2048, 2048, 1024},
                          {GgmlType::Q4_0, GgmlType::Q3_K, 512, 512, GgmlType::Q5_K, 4096, 1024, 512},
                          {GgmlType::Q4_0, GgmlType::Q2_K, 512, 512, GgmlType::Q3_K, 4096, 512, 512},
                          {GgmlType::Q4_0, GgmlType::Q2_K, 256, 256, GgmlType::Q4_K, 2048, 2048, 256},
                          {GgmlType::Q4_0, GgmlType::Q4_K, 1024, 1024, GgmlType::Q5_K, 2048, 2048, 1024}};
    for (const Case& c : cases) {
        const std::string what = std::string(quant_traits(c.prod).name) + " " + std::to_string(c.n_embd) + "x" +
                                 std::to_string(c.n_in) + " then " + quant_traits(c.cons).name + ", " +
                                 quant_traits(c.last).name;
        INFO(what);
        const HostWeight hp = make_weight(c.prod, c.n_in, c.n_embd, 31);
        const HostWeight h1 = make_weight(c.cons, c.n_embd, c.rows1, 32);
        const HostWeight h2 = make_weight(c.cons, c.n_embd, c.rows2, 33);
        const HostWeight h3 = make_weight(c.last, c.n_embd, c.rows3, 34);
        const Weight wp = cb->upload_weight(hp.view), w1 = cb->upload_weight(h1.view), w2 = cb->upload_weight(h2.view),
                     w3 = cb->upload_weight(h3.view);
        const Weight norm = upload_vector(*cb, random_floats(size_t(c.n_embd), 35, 0.5f, 1.5f));
        const auto in = random_floats(size_t(c.n_in), 36), x0 = random_floats(size_t(c.n_embd), 37, -3.0f, 3.0f);
        const Weight* ws[] = {&w1, &w2, &w3};
        auto din = device_act(*cb, 1, c.n_in, &in);
        auto proj = device_act(*cb, 1, c.n_embd), normed = device_act(*cb, 1, c.n_embd);
        auto run = [&](bool fold) {
            auto x = device_act(*cb, 1, c.n_embd, &x0);
            std::vector<ActBuffer> ys;
            std::vector<Act> outs;
            for (const Weight* w : ws) {
                ys.push_back(device_act(*cb, 1, w->n_out()));
                outs.push_back(ys.back().act());
            }
            if (fold)
                cb->matmul_add_rms_norm_matmul_n(wp, din.act(), proj.act(), x.act(), norm, 1e-5f, normed.act(), ws, outs);
            else
                cb->Backend::matmul_add_rms_norm_matmul_n(wp, din.act(), proj.act(), x.act(), norm, 1e-5f,
                                                          normed.act(), ws, outs);
            std::vector<std::vector<float>> got{read(*cb, x.act())};
            for (const Act& o : outs) got.push_back(read(*cb, o));
            return got;
        };
        const auto want = run(false), got = run(true), again = run(true);
        // The residual row: the same sums, but from a kernel of another register
        // budget (1024-thread blocks), which may order a K-quant row's additions
        // differently (seen on Q4_K: a few ulps).
        float x_err = 0.0f, x_max = 0.0f;
        for (size_t j = 0; j < want[0].size(); ++j) {
            x_err = std::max(x_err, std::fabs(got[0][j] - want[0][j]));
            x_max = std::max(x_max, std::fabs(want[0][j]));
        }
        CHECK_MESSAGE(x_err <= 1e-5f * x_max, "the residual row: max error " << x_err << " of max " << x_max);
        for (size_t i = 1; i < want.size(); ++i) {
            CHECK_MESSAGE(std::memcmp(got[i].data(), again[i].data(), got[i].size() * 4) == 0,
                          "output " << i << ": a second call differs");
            double err = 0, ref = 0;
            for (size_t j = 0; j < want[i].size(); ++j) {
                err = std::max(err, double(std::fabs(got[i][j] - want[i][j])));
                ref = std::max(ref, double(std::fabs(want[i][j])));
            }
            CHECK_MESSAGE(err <= 2e-3 * ref, "output " << i << ": max error " << err << " of max " << ref);
        }
    }
    // Shapes that do not fit are errors on either path.
    const HostWeight h = make_weight(GgmlType::Q4_0, 256, 256, 1);
    const Weight w = cb->upload_weight(h.view), norm = upload_vector(*cb, random_floats(256, 2));
    auto in = device_act(*cb, 1, 256), x = device_act(*cb, 1, 256), y = device_act(*cb, 1, 256);
    auto bad = device_act(*cb, 1, 128);
    const Weight* ws[] = {&w};
    CHECK_THROWS_AS(cb->matmul_add_rms_norm_matmul_n(w, in.act(), bad.act(), x.act(), norm, 1e-5f, y.act(), ws,
                                                     std::vector<Act>{y.act()}),
                    BackendError);
    CHECK_THROWS_AS(cb->matmul_add_rms_norm_matmul_n(w, in.act(), y.act(), x.act(), norm, 1e-5f, y.act(), ws,
                                                     std::vector<Act>{bad.act()}),
                    BackendError);
    CHECK_THROWS_AS(cb->matmul_add_rms_norm_matmul_n(w, in.act(), y.act(), x.act(), norm, 1e-5f, y.act(), ws,
                                                     std::vector<Act>{}),
                    BackendError);
}

TEST_CASE("cuda: get_rows of every weight type") {
    auto cb = cuda_backend();
    if (!cb) return;
    for (GgmlType t : kWeightTypes) {
        const int64_t n_cols = quant_traits(t).block_size == 256 ? 512 : 160;
        const HostWeight hw = make_weight(t, n_cols, 19, 3);
        const Weight w = cb->upload_weight(hw.view);
        const std::vector<int32_t> ids = {0, 18, 5, 5, 11};
        std::vector<float> want(ids.size() * size_t(n_cols));
        ref::get_rows(hw.view, ids, host_act(want, int64_t(ids.size()), n_cols));
        auto out = device_act(*cb, int64_t(ids.size()), n_cols);
        cb->get_rows(w, ids, out.act());
        check_close(read(*cb, out.act()), want, 1e-6f, 1e-6f, std::string("get_rows ") + quant_traits(t).name);
        // One id (a decode step) goes as a kernel argument rather than a staged array.
        const std::vector<int32_t> one = {17};
        std::vector<float> want_one(static_cast<size_t>(n_cols));
        ref::get_rows(hw.view, one, host_act(want_one, 1, n_cols));
        auto out_one = device_act(*cb, 1, n_cols);
        cb->get_rows(w, one, out_one.act());
        check_close(read(*cb, out_one.act()), want_one, 1e-6f, 1e-6f, std::string("get_rows of one id ") + quant_traits(t).name);
    }
    // A float table with a row length that is no multiple of 32.
    const HostWeight hw = make_weight(GgmlType::F32, 172, 4, 5);
    const Weight w = cb->upload_weight(hw.view);
    const std::vector<int32_t> ids = {3, 1};
    std::vector<float> want(2 * 172);
    ref::get_rows(hw.view, ids, host_act(want, 2, 172));
    auto out = device_act(*cb, 2, 172);
    cb->get_rows(w, ids, out.act());
    check_close(read(*cb, out.act()), want, 0.0f, 0.0f, "get_rows f32 of 172");
    CHECK_THROWS_AS(cb->get_rows(w, std::vector<int32_t>{4, 0}, out.act()), BackendError);
}

TEST_CASE("cuda: rms_norm, in place and out of place") {
    auto cb = cuda_backend();
    if (!cb) return;
    // Registers of 4 and 8 float4s per thread, and the element loop (7; 9000 past the registers).
    for (int64_t cols : {300, 4096, 5120, 7, 9000}) {
        const int64_t rows = 5;
        auto x = random_floats(size_t(rows * cols), 1, -4.0f, 4.0f);
        auto wv = random_floats(size_t(cols), 2);
        const Weight w = upload_vector(*cb, wv);
        std::vector<float> want(x.size());
        ref::rms_norm(host_act(x, rows, cols), wv.data(), 1e-5f, host_act(want, rows, cols));
        auto dx = device_act(*cb, rows, cols, &x);
        auto dout = device_act(*cb, rows, cols);
        cb->rms_norm(dx.act(), w, 1e-5f, dout.act());
        check_close(read(*cb, dout.act()), want, 1e-6f, 1e-5f, "rms_norm " + std::to_string(cols));
        cb->rms_norm(dx.act(), w, 1e-5f, dx.act());
        check_close(read(*cb, dx.act()), want, 1e-6f, 1e-5f, "rms_norm in place " + std::to_string(cols));
    }
}

TEST_CASE("cuda: rope normal and neox, partial rotation, YaRN and frequency factors") {
    auto cb = cuda_backend();
    if (!cb) return;
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
            auto dx = device_act(*cb, n_tok, n_head * head_dim, &x);
            cb->rope(dx.act(), n_head, head_dim, pos, p);
            check_close(read(*cb, dx.act()), want, 1e-6f, 1e-6f, "rope variant " + std::to_string(variant));
        }
    }
}

TEST_CASE("cuda: swiglu, add (aliased), softmax, copy_rows") {
    auto cb = cuda_backend();
    if (!cb) return;
    const int64_t rows = 3, cols = 517;
    auto a = random_floats(size_t(rows * cols), 4, -8.0f, 8.0f);
    auto b = random_floats(size_t(rows * cols), 5, -8.0f, 8.0f);
    auto da = device_act(*cb, rows, cols, &a);
    auto db = device_act(*cb, rows, cols, &b);

    std::vector<float> want(a.size());
    ref::swiglu(host_act(a, rows, cols), host_act(b, rows, cols), host_act(want, rows, cols));
    auto dout = device_act(*cb, rows, cols);
    cb->swiglu(da.act(), db.act(), dout.act());
    check_close(read(*cb, dout.act()), want, 1e-6f, 1e-5f, "swiglu");
    auto dg = device_act(*cb, rows, cols, &a);
    cb->swiglu(dg.act(), db.act(), dg.act());
    check_close(read(*cb, dg.act()), want, 1e-6f, 1e-5f, "swiglu into gate");

    ref::add(host_act(a, rows, cols), host_act(b, rows, cols), host_act(want, rows, cols));
    cb->add(da.act(), db.act(), da.act());
    check_close(read(*cb, da.act()), want, 0.0f, 0.0f, "add into a");

    auto s = b;
    ref::softmax(host_act(s, rows, cols));
    cb->softmax(db.act());
    check_close(read(*cb, db.act()), s, 1e-9f, 1e-5f, "softmax");

    const std::vector<int32_t> pick = {2, 0, 2};
    std::vector<float> picked(pick.size() * size_t(cols));
    ref::copy_rows(host_act(s, rows, cols), pick, host_act(picked, int64_t(pick.size()), cols));
    auto dp = device_act(*cb, int64_t(pick.size()), cols);
    cb->copy_rows(db.act(), pick, dp.act());
    check_close(read(*cb, dp.act()), picked, 1e-9f, 1e-5f, "copy_rows");
    // A row range of a larger buffer (Act::rows) reads and writes at its offset.
    auto tail = device_act(*cb, rows, cols);
    cb->copy_rows(db.act(), std::vector<int32_t>{1}, tail.act().rows(2, 1));
    const auto t = read(*cb, tail.act());
    const auto dev_s = read(*cb, db.act());
    CHECK(std::memcmp(t.data() + 2 * cols, dev_s.data() + cols, size_t(cols) * 4) == 0);
    CHECK(t[0] == 0.0f);
}

TEST_CASE("cuda: kv_store writes the reference's bits into a device cache") {
    auto cb = cuda_backend();
    if (!cb) return;
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
        auto k0 = device_act(*cb, 1, floats), v0 = device_act(*cb, 1, floats);
        auto k1 = device_act(*cb, 1, floats), v1 = device_act(*cb, 1, floats);
        const std::vector<KvLayerView> layers = {{k0.act().data, v0.act().data}, {k1.act().data, v1.act().data}};
        const KvView dkv{t, n_cells, dim, layers, ref_kv.cell_pos.data(), ref_kv.cell_seqs.data(), n_cells};
        auto dk = device_act(*cb, n_tok, dim, &kx), dv = device_act(*cb, n_tok, dim, &vx);
        cb->kv_store(dkv, 1, dk.act(), dv.act(), cells);
        const auto gk = read(*cb, k1.act()), gv = read(*cb, v1.act());
        const size_t per = ref_kv.k.size() / 2;
        CHECK(std::memcmp(gk.data(), ref_kv.k.data() + per, per) == 0);
        CHECK(std::memcmp(gv.data(), ref_kv.v.data() + per, per) == 0);
    }
}

// rope_kv_store is rope, rope, kv_store in one launch: the same bits in q, k and the cache.
TEST_CASE("cuda: rope_kv_store equals rope, rope and kv_store") {
    auto cb = cuda_backend();
    if (!cb) return;
    const int n_head = 6, n_head_kv = 2, head_dim = 16;
    const int64_t n_cells = 12, dim = n_head_kv * head_dim, q_dim = n_head * head_dim;
    for (GgmlType t : {GgmlType::F16, GgmlType::F32})
        for (auto mode : {RopeParams::Mode::Normal, RopeParams::Mode::Neox})
            for (int n_rot : {16, 10})
                for (int64_t n_tok : {1, 5}) {
                    RopeParams p;
                    p.mode = mode;
                    p.n_rot = n_rot;
                    std::vector<int32_t> pos, cells;
                    for (int64_t i = 0; i < n_tok; ++i) {
                        pos.push_back(int32_t(3 + 7 * i));
                        cells.push_back(int32_t((11 - 2 * i) % n_cells));
                    }
                    auto qx = random_floats(size_t(n_tok * q_dim), 31), kx = random_floats(size_t(n_tok * dim), 32),
                         vx = random_floats(size_t(n_tok * dim), 33);
                    const int64_t floats = n_cells * dim / (t == GgmlType::F16 ? 2 : 1);
                    HostKv meta(t, n_cells, dim, 1);
                    ActBuffer caches[4] = {device_act(*cb, 1, floats), device_act(*cb, 1, floats),
                                           device_act(*cb, 1, floats), device_act(*cb, 1, floats)};
                    const std::vector<KvLayerView> la = {{caches[0].act().data, caches[1].act().data}};
                    const std::vector<KvLayerView> lb = {{caches[2].act().data, caches[3].act().data}};
                    const KvView ka{t, n_cells, dim, la, meta.cell_pos.data(), meta.cell_seqs.data(), n_cells};
                    const KvView kb{t, n_cells, dim, lb, meta.cell_pos.data(), meta.cell_seqs.data(), n_cells};
                    auto qa = device_act(*cb, n_tok, q_dim, &qx), qb = device_act(*cb, n_tok, q_dim, &qx);
                    auto k_a = device_act(*cb, n_tok, dim, &kx), k_b = device_act(*cb, n_tok, dim, &kx);
                    auto dv = device_act(*cb, n_tok, dim, &vx);
                    cb->rope_kv_store(qa.act(), k_a.act(), dv.act(), n_head, head_dim, pos, p, ka, 0, cells);
                    cb->rope(qb.act(), n_head, head_dim, pos, p);
                    cb->rope(k_b.act(), n_head_kv, head_dim, pos, p);
                    cb->kv_store(kb, 0, k_b.act(), dv.act(), cells);
                    const std::string what = std::string(t == GgmlType::F16 ? "f16" : "f32") +
                                             (mode == RopeParams::Mode::Neox ? " neox" : " normal") + " n_rot " +
                                             std::to_string(n_rot) + " n_tok " + std::to_string(n_tok);
                    auto same = [&](const Act& a, const Act& b) {
                        const auto x = read(*cb, a), y = read(*cb, b);
                        return std::memcmp(x.data(), y.data(), x.size() * 4) == 0;
                    };
                    CHECK_MESSAGE(same(qa.act(), qb.act()), "q " << what);
                    CHECK_MESSAGE(same(k_a.act(), k_b.act()), "k " << what);
                    CHECK_MESSAGE(same(caches[0].act(), caches[2].act()), "k cache " << what);
                    CHECK_MESSAGE(same(caches[1].act(), caches[3].act()), "v cache " << what);
                }
}

namespace {
// The backend's attention of the tokens' queries q over `view` against the reference's.
void check_attention(Backend& b, const KvView& view, int layer, const AttentionParams& p, const std::vector<int32_t>& pos,
                     const std::vector<int32_t>& seq, std::vector<float> q, float atol, float rtol,
                     const std::string& what) {
    const int64_t n_tok = int64_t(pos.size()), q_dim = int64_t(p.n_head) * p.head_dim;
    std::vector<float> want(q.size());
    ref::attention(host_act(q, n_tok, q_dim), view, layer, p, pos, seq, host_act(want, n_tok, q_dim));
    auto dq = device_act(b, n_tok, q_dim, &q);
    auto dout = device_act(b, n_tok, q_dim);
    b.attention(dq.act(), view, layer, p, pos, seq, dout.act());
    check_close(read(b, dout.act()), want, atol, rtol, what);
}
}  // namespace

TEST_CASE("cuda: attention over a host cache: GQA, two sequences, empty cells, head sizes, decode and prefill") {
    auto cb = cuda_backend();
    if (!cb) return;
    struct Shape {
        int n_head, n_head_kv, head_dim;
    };
    for (const Shape sh :
         {Shape{8, 2, 32}, Shape{4, 4, 128}, Shape{6, 3, 8}, Shape{2, 1, 80}, Shape{2, 2, 256}, Shape{6, 2, 64}}) {
        for (bool f16 : {true, false}) {
            const GgmlType t = f16 ? GgmlType::F16 : GgmlType::F32;
            const AttentionParams p{sh.n_head, sh.n_head_kv, sh.head_dim, 1.0f / std::sqrt(float(sh.head_dim))};
            const int64_t dim = p.n_head_kv * p.head_dim, n_cells = 300;
            HostKv kv(t, n_cells, dim, 2);
            kv.hold_two_sequences();
            store_random_kv(*cb, kv.view(n_cells), 1, 21);

            // A prefill-like batch (several positions of two sequences) and a decode step.
            const std::vector<int32_t> pos = {199, 0, 120, 139, 150, 1, 77};
            const std::vector<int32_t> seq = {0, 0, 0, 1, 1, 1, 0};
            const int64_t n_tok = int64_t(pos.size()), q_dim = int64_t(p.n_head) * p.head_dim;
            auto q = random_floats(size_t(n_tok * q_dim), 23, -3.0f, 3.0f);
            const KvView view = kv.view(251);  // not a multiple of the warps
            std::vector<float> want(q.size());
            ref::attention(host_act(q, n_tok, q_dim), view, 1, p, pos, seq, host_act(want, n_tok, q_dim));
            auto dq = device_act(*cb, n_tok, q_dim, &q);
            auto dout = device_act(*cb, n_tok, q_dim);
            cb->attention(dq.act(), view, 1, p, pos, seq, dout.act());
            const std::string what = "attention " + std::to_string(sh.n_head) + "/" + std::to_string(sh.n_head_kv) + "x" +
                                     std::to_string(sh.head_dim) + (f16 ? " f16" : " f32");
            check_close(read(*cb, dout.act()), want, 1e-5f, 1e-4f, what);

            // Prompt-sized batches take the tiled kernels: 45 tokens (a partial tile), both
            // sequences interleaved, one token of a sequence with no cells (sees nothing); and
            // 150 consecutive positions (tiles of 64 queries and a tail, causal skipping).
            // F16 caches of head_dim 64/128 take the tensor-core kernel, which rounds the
            // scaled queries and the softmax weights to F16 (as llama.cpp's flash attention).
            const bool mma = f16 && (sh.head_dim == 64 || sh.head_dim == 128);
            const float batch_tol = mma ? 3e-3f : 1e-5f, batch_rtol = mma ? 3e-3f : 1e-4f;
            for (int batch = 0; batch < 2; ++batch) {
                std::vector<int32_t> bpos, bseq;
                for (int i = 0; i < (batch == 0 ? 45 : 150); ++i) {
                    bseq.push_back(batch == 1 ? 0 : i == 17 ? 9 : i % 3 == 0);
                    bpos.push_back(batch == 1 ? 50 + i : bseq.back() == 1 ? 100 + (i * 7) % 40 : (i * 37) % 200);
                }
                const int64_t bn = int64_t(bpos.size());
                check_attention(*cb, view, 1, p, bpos, bseq, random_floats(size_t(bn * q_dim), 24, -3.0f, 3.0f),
                                batch_tol, batch_rtol, what + " tiled batch of " + std::to_string(bn));
            }

            std::vector<float> want1(static_cast<size_t>(q_dim));
            auto q1 = std::vector<float>(q.begin(), q.begin() + q_dim);
            ref::attention(host_act(q1, 1, q_dim), view, 1, p, std::vector<int32_t>{199}, std::vector<int32_t>{0},
                           host_act(want1, 1, q_dim));
            auto dout1 = device_act(*cb, 1, q_dim);
            cb->attention(dq.act().rows(0, 1), view, 1, p, std::vector<int32_t>{199}, std::vector<int32_t>{0}, dout1.act());
            check_close(read(*cb, dout1.act()), want1, 1e-5f, 1e-4f, what + " decode");

            // A token that sees nothing gets zeros, as the reference.
            auto dout2 = device_act(*cb, 1, q_dim);
            cb->attention(dq.act().rows(0, 1), view, 1, p, std::vector<int32_t>{5}, std::vector<int32_t>{7}, dout2.act());
            for (float x : read(*cb, dout2.act())) CHECK(x == 0.0f);
        }
    }
}

// 33..128 cells: one block a head whose four groups take a chunk each and merge in
// shared memory (no split, no merge kernel); holes, grouped heads, tokens that see
// only some cells, a token that sees none.
TEST_CASE("cuda: decode attention over 2-4 chunks (one block of groups a head) against the reference") {
    auto cb = cuda_backend();
    if (!cb) return;
    for (bool f16 : {true, false})
        for (int head_dim : {64, 128})
            for (int64_t n_scan : {33, 64, 100, 128}) {
                const AttentionParams p{8, 2, head_dim, 1.0f / std::sqrt(float(head_dim))};
                const int64_t dim = p.n_head_kv * p.head_dim, q_dim = int64_t(p.n_head) * p.head_dim;
                HostKv kv(f16 ? GgmlType::F16 : GgmlType::F32, n_scan, dim, 1);
                for (int64_t c = 0; c < n_scan; ++c) {
                    kv.cell_pos[size_t(c)] = int32_t(c);
                    kv.cell_seqs[size_t(c)] = c % 7 == 3 ? 2u : 1u;
                }
                kv.cell_pos[size_t(n_scan / 3)] = -1;  // a hole
                kv.cell_seqs[size_t(n_scan / 3)] = 0;
                const KvView view = kv.view(n_scan);
                store_random_kv(*cb, view, 0, 51);
                const std::string what = std::string(f16 ? "f16" : "f32") + " head_dim " + std::to_string(head_dim) +
                                         " cells " + std::to_string(n_scan);
                const std::vector<int32_t> pos{int32_t(n_scan - 1), 40, 3}, seq{0, 0, 1};
                auto q = random_floats(size_t(3 * q_dim), 52);
                check_attention(*cb, view, 0, p, pos, seq, q, 1e-5f, 1e-4f, what + ", 3 tokens");
                check_attention(*cb, view, 0, p, {int32_t(n_scan - 1)}, {0},
                                std::vector<float>(q.begin(), q.begin() + q_dim), 1e-5f, 1e-4f,
                                what + ", 1 token");
                // Sequence 6 holds no cell: zeros.
                auto dq = device_act(*cb, 1, q_dim, &q);
                auto out = device_act(*cb, 1, q_dim);
                cb->attention(dq.act(), view, 0, p, std::vector<int32_t>{int32_t(n_scan)}, std::vector<int32_t>{6},
                              out.act());
                for (float x : read(*cb, out.act())) CHECK(x == 0.0f);
            }
}

// A decode step's rope, KV store and attention in the attention kernel (one token)
// against the ops one by one (the base class's rope_kv_attention): the outputs, and
// a second query's attention over each cache afterwards (the new cell as stored).
TEST_CASE("cuda: rope_kv_attention of one token equals rope_kv_store then attention") {
    auto cb = cuda_backend();
    if (!cb) return;
    const AttentionParams p{32, 8, 128, 1.0f / std::sqrt(128.0f)};
    const int64_t dim = p.n_head_kv * p.head_dim, q_dim = int64_t(p.n_head) * p.head_dim;
    for (bool f16 : {true, false})
        for (auto mode : {RopeParams::Mode::Normal, RopeParams::Mode::Neox})
            for (int n_rot : {128, 64})
                for (int64_t n_scan : {40, 1000})
                    for (int32_t cell : {int32_t(n_scan / 2), int32_t(n_scan - 1)}) {
                        const std::string what = std::string(f16 ? "f16" : "f32") +
                                                 (mode == RopeParams::Mode::Neox ? " neox" : " normal") + " n_rot " +
                                                 std::to_string(n_rot) + " cells " + std::to_string(n_scan) +
                                                 " new cell " + std::to_string(cell);
                        RopeParams rope;
                        rope.mode = mode;
                        rope.n_rot = n_rot;
                        const int32_t pos = int32_t(n_scan) + 5;
                        HostKv kva(f16 ? GgmlType::F16 : GgmlType::F32, n_scan, dim, 1),
                            kvb(f16 ? GgmlType::F16 : GgmlType::F32, n_scan, dim, 1);
                        for (HostKv* kv : {&kva, &kvb}) {
                            for (int64_t c = 0; c < n_scan; ++c) {
                                kv->cell_pos[size_t(c)] = int32_t(c);
                                kv->cell_seqs[size_t(c)] = 1u;
                            }
                            kv->cell_pos[size_t(cell)] = pos;  // the token's own cell
                            store_random_kv(*cb, kv->view(n_scan), 0, 41);
                        }
                        auto qx = random_floats(size_t(q_dim), 42), kx = random_floats(size_t(dim), 43),
                             vx = random_floats(size_t(dim), 44);
                        auto qa = device_act(*cb, 1, q_dim, &qx), qb = device_act(*cb, 1, q_dim, &qx);
                        auto ka = device_act(*cb, 1, dim, &kx), kb = device_act(*cb, 1, dim, &kx);
                        auto v = device_act(*cb, 1, dim, &vx);
                        auto oa = device_act(*cb, 1, q_dim), ob = device_act(*cb, 1, q_dim);
                        const std::vector<int32_t> tok_pos{pos}, seq{0}, cells{cell};
                        cb->rope_kv_attention(qa.act(), ka.act(), v.act(), tok_pos, seq, rope, p, kva.view(n_scan), 0,
                                              cells, oa.act());
                        cb->Backend::rope_kv_attention(qb.act(), kb.act(), v.act(), tok_pos, seq, rope, p,
                                                       kvb.view(n_scan), 0, cells, ob.act());
                        check_close(read(*cb, oa.act()), read(*cb, ob.act()), 1e-6f, 1e-5f, what);
                        // The caches as the next step sees them.
                        auto q2 = random_floats(size_t(q_dim), 45);
                        auto dq2 = device_act(*cb, 1, q_dim, &q2);
                        auto o2a = device_act(*cb, 1, q_dim), o2b = device_act(*cb, 1, q_dim);
                        cb->attention(dq2.act(), kva.view(n_scan), 0, p, std::vector<int32_t>{pos + 1}, seq, o2a.act());
                        cb->attention(dq2.act(), kvb.view(n_scan), 0, p, std::vector<int32_t>{pos + 1}, seq, o2b.act());
                        check_close(read(*cb, o2a.act()), read(*cb, o2b.act()), 1e-6f, 1e-5f, what + ", next step");
                    }
}

TEST_CASE("cuda: decode attention over a long context: many splits, chunks cut by the splits' ends, holes") {
    auto cb = cuda_backend();
    if (!cb) return;
    for (bool f16 : {true, false}) {
        const AttentionParams p{32, 8, 128, 1.0f / std::sqrt(128.0f)};
        const int64_t dim = p.n_head_kv * p.head_dim, n_cells = 3001;
        HostKv kv(f16 ? GgmlType::F16 : GgmlType::F32, n_cells, dim, 1);
        // One sequence at positions 0..2999 in cells 0..2999, with every 97th cell empty
        // and a second sequence's cells in between (the decode token must skip them).
        for (int64_t c = 0; c < 3000; ++c) {
            kv.cell_pos[size_t(c)] = int32_t(c);
            kv.cell_seqs[size_t(c)] = c % 13 == 5 ? 2u : 1u;
            if (c % 97 == 3) {
                kv.cell_pos[size_t(c)] = -1;
                kv.cell_seqs[size_t(c)] = 0;
            }
        }
        const KvView view = kv.view(3000);
        store_random_kv(*cb, view, 0, 31);
        // Batches of 1 and 3 tokens (decode, the server's slots), last position 2999 and
        // earlier ones (cells past a token's position are masked).
        for (const std::vector<int32_t>& pos : {std::vector<int32_t>{2999}, std::vector<int32_t>{2999, 1500, 40}}) {
            const int64_t n_tok = int64_t(pos.size()), q_dim = int64_t(p.n_head) * p.head_dim;
            check_attention(*cb, view, 0, p, pos, std::vector<int32_t>(pos.size(), 0),
                            random_floats(size_t(n_tok * q_dim), 33, -3.0f, 3.0f), 1e-5f, 1e-4f,
                            "long decode attention, " + std::to_string(n_tok) + (f16 ? " tokens, f16" : " tokens, f32"));
        }
    }
}

TEST_CASE("cuda: decode attention's output quantized on the way feeds matmul as the quantize kernel would") {
    auto cb = cuda_backend();
    if (!cb) return;
    for (int head_dim : {64, 128})
        for (int64_t n_scan : {30, 700}) {  // one split, several (the merge writes it)
            const AttentionParams p{8, 2, head_dim, 1.0f / std::sqrt(float(head_dim))};
            const int64_t dim = p.n_head_kv * head_dim, q_dim = int64_t(p.n_head) * head_dim;
            HostKv kv(GgmlType::F16, 800, dim, 1);
            for (int64_t c = 0; c < n_scan; ++c) {
                kv.cell_pos[size_t(c)] = int32_t(c);
                kv.cell_seqs[size_t(c)] = 1u;
            }
            const KvView view = kv.view(n_scan);
            store_random_kv(*cb, view, 0, 41);
            const HostWeight hw = make_weight(GgmlType::Q4_0, q_dim, 24, 5);
            const Weight w = cb->upload_weight(hw.view);
            for (const std::vector<int32_t>& pos : {std::vector<int32_t>{int32_t(n_scan - 1)},
                                                    std::vector<int32_t>{int32_t(n_scan - 1), 3, 20}}) {
                const int64_t n_tok = int64_t(pos.size());
                const std::vector<int32_t> seq(pos.size(), 0);
                auto q = random_floats(size_t(n_tok * q_dim), 43, -3.0f, 3.0f);
                auto dq = device_act(*cb, n_tok, q_dim, &q), dout = device_act(*cb, n_tok, q_dim),
                     dcopy = device_act(*cb, n_tok, q_dim);
                auto y_fused = device_act(*cb, n_tok, 24), y_plain = device_act(*cb, n_tok, 24);
                std::vector<int32_t> all;
                for (int64_t r = 0; r < n_tok; ++r) all.push_back(int32_t(r));
                cb->attention(dq.act(), view, 0, p, pos, seq, dout.act());
                cb->matmul(w, dout.act(), y_fused.act());
                cb->copy_rows(dout.act(), all, dcopy.act());
                cb->matmul(w, dcopy.act(), y_plain.act());
                const auto a = read(*cb, y_fused.act()), b = read(*cb, y_plain.act());
                CHECK_MESSAGE(std::memcmp(a.data(), b.data(), a.size() * 4) == 0,
                              "head_dim " << head_dim << ", " << n_scan << " cells, " << n_tok << " tokens");
            }
        }
}

TEST_CASE("cuda: mismatched shapes and unsupported types are errors, not crashes") {
    auto cb = cuda_backend();
    if (!cb) return;
    const HostWeight hw = make_weight(GgmlType::Q4_0, 64, 8, 1);
    const Weight w = cb->upload_weight(hw.view);
    auto x = device_act(*cb, 2, 32), y = device_act(*cb, 2, 8);
    CHECK_THROWS_AS(cb->matmul(w, x.act(), y.act()), BackendError);
    TensorView q8k = hw.view;
    q8k.type = GgmlType::Q8_K;
    CHECK_THROWS_WITH_AS(cb->upload_weight(q8k), doctest::Contains("no CUDA kernels"), BackendError);
}
