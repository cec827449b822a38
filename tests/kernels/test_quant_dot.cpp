// The integer matmul kernels (kernels/cpu/quant_dot_*): 8-bit activation
// quantizers and weight x activation tiles, for every weight type and every
// kernel table this CPU can run, on sizes that leave tails in every blocking
// (rows not multiples of the row tiles, 1..9 tokens, 1..5 blocks per row).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/quant_blocks.h"
#include "formats/quant_rows.h"
#include "formats/quant_traits.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/q4_0_x16.h"

using namespace kiln;
using namespace kiln::cpu;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// n_tok rows of quantized activations, one call per row as the backend makes them.
std::vector<uint8_t> quantize_rows(const CpuKernels& k, ActQuant a, const std::vector<float>& x, int64_t n_tok,
                                   int64_t n_in) {
    const size_t rb = q8_row_bytes(a, n_in);
    std::vector<uint8_t> q(rb * size_t(n_tok), 0xAB);
    for (int64_t t = 0; t < n_tok; ++t) k.quant.quantize_act[int(a)](x.data() + t * n_in, n_in, q.data() + size_t(t) * rb);
    return q;
}

// The values a quantized activation row stands for: d * q.
std::vector<double> dequantized(ActQuant a, const uint8_t* row, int64_t n) {
    const Q8RowView v = q8_row_view(a, row, n);
    const int64_t bs = act_block_size(a);
    std::vector<double> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = double(v.d[i / bs]) * v.qs[i];
    return x;
}

// Bytes of the meaningful part of a quantized row (the rest is alignment padding).
size_t payload_bytes(ActQuant a, int64_t n) {
    const int64_t nb = n / act_block_size(a);
    return size_t(n) + size_t(nb) * 4 + (a == ActQuant::Q8_K ? size_t(n / 16) * 2 : size_t(nb) * 8);
}

const char* act_name(ActQuant a) { return a == ActQuant::Q8_0 ? "q8_0" : a == ActQuant::Q8_1 ? "q8_1" : "q8_K"; }

}  // namespace

TEST_CASE("activation quantizers round alike on every ISA and bound the error by half a step") {
    for (ActQuant a : {ActQuant::Q8_0, ActQuant::Q8_1, ActQuant::Q8_K}) {
        const int64_t bs = act_block_size(a), n = bs * 3;
        auto x = random_floats(size_t(n), 5, 2.0f);
        for (int64_t i = bs; i < 2 * bs; ++i) x[size_t(i)] = 0.0f;      // an all-zero block
        x[size_t(2 * bs + 3)] = -40.0f;                                  // a negative extreme
        for (int64_t i = 2 * bs + 8; i < 2 * bs + 16; ++i) x[size_t(i)] = 20.0f + 0.5f * float(i % 2);
        const auto ref = quantize_rows(scalar_kernels(), a, x, 1, n);
        for (const CpuKernels* k : runnable_kernels()) {
            INFO(act_name(a) << " " << k->isa);
            const auto got = quantize_rows(*k, a, x, 1, n);
            CHECK(std::memcmp(got.data(), ref.data(), payload_bytes(a, n)) == 0);
        }
        const Q8RowView v = q8_row_view(a, ref.data(), n);
        const auto xd = dequantized(a, ref.data(), n);
        for (int64_t b = 0; b < n / bs; ++b) {
            float amax = 0.0f;
            int qmax = 0;
            for (int64_t i = b * bs; i < (b + 1) * bs; ++i) {
                amax = std::max(amax, std::fabs(x[size_t(i)]));
                qmax = std::max(qmax, std::abs(int(v.qs[i])));
            }
            INFO(act_name(a) << " block " << b);
            CHECK(qmax == (amax == 0.0f ? 0 : 127));
            // Q8_0/Q8_1 scales are fp16: allow their 2^-11 relative rounding on top of half a step.
            for (int64_t i = b * bs; i < (b + 1) * bs; ++i)
                CHECK(std::fabs(xd[size_t(i)] - x[size_t(i)]) <= amax / 127.0 * (0.5 + 127.0 / 2048.0) + 1e-7);
        }
    }
}

TEST_CASE("q8_K activations equal the reference block_q8_K quantizer") {
    const int64_t n = 512;
    const auto x = random_floats(size_t(n), 9, 3.0f);
    std::vector<block_q8_K> blocks(size_t(n / QK_K));
    quantize_row_q8_K(x.data(), blocks.data(), n);
    for (const CpuKernels* k : runnable_kernels()) {
        const auto row = quantize_rows(*k, ActQuant::Q8_K, x, 1, n);
        const Q8RowView v = q8_row_view(ActQuant::Q8_K, row.data(), n);
        for (int64_t b = 0; b < n / QK_K; ++b) {
            INFO(k->isa << " block " << b);
            CHECK(v.d[b] == blocks[size_t(b)].d);
            CHECK(std::memcmp(v.qs + b * QK_K, blocks[size_t(b)].qs, QK_K) == 0);
            CHECK(std::memcmp(v.bsums + b * 16, blocks[size_t(b)].bsums, sizeof blocks[0].bsums) == 0);
        }
    }
}

TEST_CASE("q8_0/q8_1 rows carry the exact block sums and d times them rounded to fp16") {
    const int64_t n = 96;
    const auto x = random_floats(size_t(n), 21);
    const auto row = quantize_rows(scalar_kernels(), ActQuant::Q8_1, x, 1, n);
    const Q8RowView v = q8_row_view(ActQuant::Q8_1, row.data(), n);
    for (int b = 0; b < 3; ++b) {
        int sum = 0;
        for (int i = 0; i < 32; ++i) sum += v.qs[32 * b + i];
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(32 * b + i)]));
        CHECK(v.sum[b] == sum);
        CHECK(v.s[b] == fp16_to_fp32(fp32_to_fp16(amax / 127.f * float(sum))));
    }
}

TEST_CASE("integer matmul tiles match the dequantized reference for every type and ISA") {
    for (const IntDotType& it : kIntDotTypes) {
        const QuantTraits& qt = quant_traits(it.type);
        const int64_t bs = act_block_size(it.act);
        for (int64_t n_blocks : {1, 2, 3, 5}) {
            const int64_t n_in = bs * n_blocks;
            const int64_t n_rows = 19;  // past tiles of 2 and 4 rows, with tails
            const auto wf = random_floats(size_t(n_in * n_rows), 7u + uint32_t(it.type) + uint32_t(n_blocks), 0.5f);
            const auto wq = quantize(it.type, wf.data(), n_in * n_rows);
            const size_t w_stride = size_t(n_in / qt.block_size) * qt.block_bytes;
            std::vector<float> wd(size_t(n_in * n_rows));
            qt.dequantize(wq.data(), wd.data(), n_in * n_rows);
            for (int64_t n_tok : {1, 2, 3, 4, 5, 7, 9, 13}) {
                const auto x = random_floats(size_t(n_in * n_tok), 3u + uint32_t(n_tok));
                const auto xq = quantize_rows(scalar_kernels(), it.act, x, n_tok, n_in);
                const size_t x_stride = q8_row_bytes(it.act, n_in);
                // Reference: dequantized weights . dequantized activations in double. The
                // bound covers float reordering and, for Q8_1, the fp16 rounding of s.
                std::vector<double> want(size_t(n_tok * n_rows)), tol(size_t(n_tok * n_rows));
                for (int64_t t = 0; t < n_tok; ++t) {
                    const auto xd = dequantized(it.act, xq.data() + size_t(t) * x_stride, n_in);
                    const Q8RowView v = q8_row_view(it.act, xq.data() + size_t(t) * x_stride, n_in);
                    for (int64_t r = 0; r < n_rows; ++r) {
                        double s = 0.0, mag = 0.0;
                        for (int64_t i = 0; i < n_in; ++i) {
                            s += double(wd[size_t(r * n_in + i)]) * xd[size_t(i)];
                            mag += std::fabs(double(wd[size_t(r * n_in + i)]) * xd[size_t(i)]);
                        }
                        double extra = 0.0;
                        if (it.act == ActQuant::Q8_1)
                            for (int64_t b = 0; b < n_blocks; ++b) extra += 2.0 * std::fabs(double(v.s[b])) / 2048.0;
                        want[size_t(t * n_rows + r)] = s;
                        tol[size_t(t * n_rows + r)] = 1e-5 * mag + extra + 1e-6;
                    }
                }
                for (const CpuKernels* k : runnable_kernels()) {
                    const int64_t ldy = n_rows + 3;
                    std::vector<float> y(size_t(n_tok * ldy), NAN);
                    k->quant.gemm[int_dot_slot(it.type)](wq.data(), w_stride, n_rows, xq.data(), x_stride, n_tok, n_in,
                                                         y.data(), ldy);
                    int bad = 0;
                    double worst = 0.0;
                    for (int64_t t = 0; t < n_tok; ++t)
                        for (int64_t r = 0; r < n_rows; ++r) {
                            const double err = std::fabs(double(y[size_t(t * ldy + r)]) - want[size_t(t * n_rows + r)]);
                            if (!(err <= tol[size_t(t * n_rows + r)])) ++bad;
                            worst = std::max(worst, err);
                        }
                    INFO(qt.name << " " << k->isa << " n_in=" << n_in << " tokens=" << n_tok << " worst error " << worst);
                    CHECK(bad == 0);
                    // Padding between rows of y stays untouched.
                    for (int64_t t = 0; t < n_tok; ++t) CHECK(std::isnan(y[size_t(t * ldy + n_rows)]));
                }
            }
        }
    }
}

TEST_CASE("q4_0 x16: repacked tiles equal the plain-layout reference kernel on every ISA that has them") {
    int n_tables = 0;
    for (const CpuKernels* k : runnable_kernels()) n_tables += k->quant.q4_0_x16 != nullptr;
#if defined(__x86_64__)
    // avx2, avxvnni and avx512 all read the repacked layout.
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        CHECK(n_tables >= 1);
#endif
    CHECK(!scalar_kernels().quant.q4_0_x16);  // the oracle keeps the file's layout
    const QuantGemmFn ref = scalar_kernels().quant.gemm[int_dot_slot(GgmlType::Q4_0)];
    // Rows around the 16-row groups (padding rows must not leak into y), odd block
    // counts, tokens around the 4- and 8-token tiles.
    for (int64_t n_rows : {1, 5, 16, 17, 35, 48}) {
        for (int64_t n_blocks : {1, 3, 4, 7}) {
            const int64_t n_in = 32 * n_blocks;
            const auto wf = random_floats(size_t(n_in * n_rows), 40u + uint32_t(n_rows * 8 + n_blocks), 0.5f);
            const auto wq = quantize(GgmlType::Q4_0, wf.data(), n_in * n_rows);
            const size_t w_stride = size_t(n_blocks) * sizeof(block_q4_0);
            const size_t group_bytes = q4_0_x16_group_bytes(n_in);
            const int64_t n_groups = q4_0_x16_groups(n_rows);
            std::vector<uint8_t> packed(size_t(n_groups) * group_bytes, 0xCD);
            repack_q4_0_x16(wq.data(), w_stride, n_rows, n_in, 0, n_groups, packed.data());
            for (int64_t n_tok : {1, 2, 3, 4, 5, 8, 9, 13, 17}) {
                const auto x = random_floats(size_t(n_in * n_tok), 77u + uint32_t(n_tok), 2.0f);
                const auto xq = quantize_rows(scalar_kernels(), ActQuant::Q8_0, x, n_tok, n_in);
                const size_t x_stride = q8_row_bytes(ActQuant::Q8_0, n_in);
                const int64_t ldy = n_rows + 2;
                std::vector<float> want(size_t(n_tok * ldy), NAN);
                ref(wq.data(), w_stride, n_rows, xq.data(), x_stride, n_tok, n_in, want.data(), ldy);
                for (const CpuKernels* k : runnable_kernels()) {
                    if (!k->quant.q4_0_x16) continue;
                    // Whole tensor, and from the second group on (where the backend starts a later tile).
                    for (int64_t r0 : {int64_t(0), int64_t(16)}) {
                        if (r0 >= n_rows) continue;
                        std::vector<float> y(size_t(n_tok * ldy), NAN);
                        k->quant.q4_0_x16(packed.data() + size_t(r0 / 16) * group_bytes, group_bytes, n_rows - r0, xq.data(),
                                          x_stride, n_tok, n_in, y.data() + r0, ldy);
                        int bad = 0;
                        double worst = 0.0;
                        for (int64_t t = 0; t < n_tok; ++t)
                            for (int64_t r = r0; r < n_rows; ++r) {
                                const double w_ = want[size_t(t * ldy + r)], got = y[size_t(t * ldy + r)];
                                const double err = std::fabs(got - w_);
                                // Same integer sums and scales; only the float summation order differs.
                                if (!(err <= 1e-5 * (1.0 + std::fabs(w_)) * double(n_blocks))) ++bad;
                                worst = std::max(worst, err);
                            }
                        INFO(k->isa << " rows=" << n_rows << " from " << r0 << " n_in=" << n_in << " tokens=" << n_tok
                                    << " worst error " << worst);
                        CHECK(bad == 0);
                        for (int64_t t = 0; t < n_tok; ++t) {
                            CHECK(std::isnan(y[size_t(t * ldy + n_rows)]));  // past the last row
                            for (int64_t r = 0; r < r0; ++r) CHECK(std::isnan(y[size_t(t * ldy + r)]));
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("KILN_CPU tables: scalar always runs and every runnable table names its ISA") {
    const auto tables = runnable_kernels();
    REQUIRE(!tables.empty());
    CHECK(std::string(tables.front()->isa) == "scalar");
    for (const CpuKernels* k : tables) {
        for (int a = 0; a < kActQuantCount; ++a) CHECK(bool(k->quant.quantize_act[a]));
        for (int s = 0; s < kIntDotTypeCount; ++s) CHECK(bool(k->quant.gemm[s]));
    }
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        CHECK(tables.size() >= 2);
#endif
    std::string names;
    for (const CpuKernels* k : tables) names += std::string(names.empty() ? "" : " ") + k->isa;
    MESSAGE("runnable kernel tables: " << names);
    // The table this machine picks, when a run must prove which one it tested:
    // scripts/test-neon expects neon under qemu's max CPU and scalar on a CPU
    // without dotprod, so a detection slip cannot pass as a scalar-only run.
    if (const char* want = std::getenv("KILN_EXPECT_ISA"); want && *want) {
        INFO("runnable: " << names);
        CHECK(std::string(tables.back()->isa) == std::string(want));
    }
    if (const char* forced = std::getenv("KILN_CPU"); forced && *forced) CHECK(std::string(cpu_kernels().isa) == std::string(forced));
}

TEST_CASE("activation quantizers take NaN and infinity without reading past the row") {
    for (ActQuant a : {ActQuant::Q8_0, ActQuant::Q8_1, ActQuant::Q8_K}) {
        const int64_t n = act_block_size(a) * 2;
        std::vector<float> x(static_cast<size_t>(n), 0.5f);
        x[3] = NAN;
        x[5] = INFINITY;
        const int64_t bs = act_block_size(a);
        for (const CpuKernels* k : runnable_kernels()) {
            INFO(act_name(a) << " " << k->isa);
            std::vector<uint8_t> row(q8_row_bytes(a, n));
            k->quant.quantize_act[int(a)](x.data(), n, row.data());  // a sanitizer build also checks the reads
            // The bad values stay in their block: the next one is quantized as usual.
            const Q8RowView v = q8_row_view(a, row.data(), n);
            int bad = 0;
            for (int64_t i = bs; i < n; ++i) bad += std::abs(int(v.qs[i])) != 127;
            CHECK(bad == 0);
            CHECK(std::fabs(std::fabs(v.d[1]) - 0.5f / 127.f) <= 0.5f / 127.f / 1024.f);  // Q8_K's d is negative here
        }
    }
}
