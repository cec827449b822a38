// Quantize -> dequantize on seeded normal data for every type: the error must
// stay under a per-type bound set a little above what the reference
// quantizers measure (see the MESSAGE output with -s).
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "formats/fp16.h"
#include "formats/quant_blocks.h"
#include "formats/quant_traits.h"
#include "test_quant_util.h"

using namespace kiln;

namespace {

// Relative RMSE bounds for N(0,1) data, a little above what the reference
// quantizers measure here (in comments). Q8's error is the rounding step
// amax/127 over sqrt(12), about 0.68% for normal data, not less.
double roundtrip_bound(GgmlType t) {
    switch (t) {
        case GgmlType::F32: return 0.0;
        case GgmlType::F16: return 0.0003;   // 0.00025
        case GgmlType::BF16: return 0.003;   // 0.00256
        case GgmlType::Q8_0: case GgmlType::Q8_1: return 0.008;  // 0.0068
        case GgmlType::Q8_K: return 0.008;   // 0.0070
        case GgmlType::Q6_K: return 0.022;   // 0.0180
        case GgmlType::Q5_0: case GgmlType::Q5_1: return 0.05;  // 0.0445, 0.0428
        case GgmlType::Q5_K: return 0.042;   // 0.0363
        case GgmlType::Q4_0: case GgmlType::Q4_1: return 0.10;  // 0.0917, 0.0916
        case GgmlType::Q4_K: return 0.082;   // 0.0718
        case GgmlType::Q3_K: return 0.18;    // 0.156
        case GgmlType::Q2_K: return 0.33;    // 0.298
    }
    return 0.0;
}

}  // namespace

TEST_CASE("quant round trip of normal data stays within each type's error bound") {
    CHECK(all_quant_traits().size() == 15);
    for (const QuantTraits& qt : all_quant_traits()) {
        double worst = 0;
        for (int64_t blocks : {1, 4, 37, 160}) {
            const int64_t n = qt.block_size == 1 ? blocks * 7 : blocks * qt.block_size;
            const auto x = test::normal_data(size_t(n), 1234u + uint32_t(blocks));
            const auto bytes = quantize(qt.type, x.data(), n);
            REQUIRE(bytes.size() == size_t(n / qt.block_size) * qt.block_bytes);
            REQUIRE(bytes.size() == *tensor_bytes(qt.type, uint64_t(n)));
            const auto y = dequantize(qt.type, bytes.data(), n);
            const double err = test::relative_rmse(y, x);
            worst = std::max(worst, err);
            for (float v : y) REQUIRE(std::isfinite(v));
        }
        MESSAGE(std::string(qt.name) << ": worst relative RMSE " << worst);
        CHECK_MESSAGE(worst <= roundtrip_bound(qt.type), std::string(qt.name));
    }
}

TEST_CASE("quant round trip is not trivially passing: a scaled copy of the data fails the bound") {
    // Guards the metric: dequantized output scaled by 1.5 must blow every bound.
    const auto x = test::normal_data(1024, 7);
    for (const QuantTraits& qt : all_quant_traits()) {
        auto y = dequantize(qt.type, quantize(qt.type, x.data(), 1024).data(), 1024);
        for (float& v : y) v *= 1.5f;
        CHECK_MESSAGE(test::relative_rmse(y, x) > 0.35, std::string(qt.name));
    }
}

TEST_CASE("quant round trip keeps zero blocks zero and scales with the data") {
    for (const QuantTraits& qt : all_quant_traits()) {
        const int64_t n = qt.block_size == 1 ? 64 : 2 * qt.block_size;
        const std::vector<float> zeros(size_t(n), 0.0f);
        const auto z = dequantize(qt.type, quantize(qt.type, zeros.data(), n).data(), n);
        for (float v : z) REQUIRE_MESSAGE(v == 0.0f, std::string(qt.name));

        // Tiny and large magnitudes: relative error must not depend on scale
        // (within fp16's range for the scales).
        for (float scale : {1e-3f, 300.0f}) {
            const auto x = test::normal_data(size_t(n), 99, scale);
            const auto y = dequantize(qt.type, quantize(qt.type, x.data(), n).data(), n);
            CHECK_MESSAGE(test::relative_rmse(y, x) <= roundtrip_bound(qt.type) * 1.5 + 1e-6,
                          std::string(qt.name) << " scale " << scale);
        }
    }
}

TEST_CASE("f16 and bf16 tensors are exact on representable values") {
    std::mt19937 rng(5);
    std::vector<float> h, b;
    for (int i = 0; i < 4096; ++i) {
        uint16_t bits = uint16_t(rng());
        if ((bits & 0x7c00) != 0x7c00) h.push_back(fp16_to_fp32(bits));  // finite halves
        if ((bits & 0x7f80) != 0x7f80) b.push_back(bf16_to_fp32(bits));  // finite bfloats
    }
    const auto hy = dequantize(GgmlType::F16, quantize(GgmlType::F16, h.data(), int64_t(h.size())).data(), int64_t(h.size()));
    const auto by = dequantize(GgmlType::BF16, quantize(GgmlType::BF16, b.data(), int64_t(b.size())).data(), int64_t(b.size()));
    CHECK(std::memcmp(hy.data(), h.data(), h.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(by.data(), b.data(), b.size() * sizeof(float)) == 0);
}

TEST_CASE("q8_1 stores s = d * sum(q) and q8_K stores the sums of each 16 values") {
    const auto x = test::normal_data(QK_K, 21);
    const auto b1 = quantize(GgmlType::Q8_1, x.data(), QK_K);
    const auto* q81 = reinterpret_cast<const block_q8_1*>(b1.data());
    for (int i = 0; i < QK_K / QK8_1; ++i) {
        int sum = 0;
        int amax = 0;
        for (int8_t q : q81[i].qs) {
            sum += q;
            amax = std::max(amax, std::abs(int(q)));
        }
        CHECK(amax == 127);  // the scale maps the largest magnitude to 127
        // s is rounded from the unrounded d, so allow fp16's half-ulp twice over.
        const float expect = float(sum) * fp16_to_fp32(q81[i].d);
        CHECK(std::fabs(fp16_to_fp32(q81[i].s) - expect) <= std::fabs(expect) * 0x1p-10f + 1e-6f);
    }
    const auto bk = quantize(GgmlType::Q8_K, x.data(), QK_K);
    const auto* q8k = reinterpret_cast<const block_q8_K*>(bk.data());
    int amax = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) {
            sum += q8k->qs[16 * j + l];
            amax = std::max(amax, std::abs(int(q8k->qs[16 * j + l])));
        }
        CHECK(q8k->bsums[j] == sum);
    }
    CHECK(amax == 127);
    CHECK(q8k->d > 0.0f);
}

TEST_CASE("quantizers accept non-finite and extreme input without crashing") {
    // Not a quality check: a tensor with a NaN or an overflow must still be
    // written (as llama-quantize would) and read back without faults; blocks
    // that hold only ordinary values stay accurate.
    const float bad[] = {std::nanf(""), INFINITY, -INFINITY, 1e30f, -1e30f, 1e-40f, 65504.0f};
    for (const QuantTraits& qt : all_quant_traits()) {
        const int64_t n = qt.block_size == 1 ? 256 : 2 * std::max<int64_t>(qt.block_size, 256);
        for (float v : bad) {
            auto x = test::normal_data(size_t(n), 3);
            x[5] = v;  // only the first block (or first element) is poisoned
            const auto bytes = quantize(qt.type, x.data(), n);
            const auto y = dequantize(qt.type, bytes.data(), n);
            REQUIRE(y.size() == size_t(n));
            const int64_t clean_from = n / 2;
            const std::vector<float> xs(x.begin() + clean_from, x.end()), ys(y.begin() + clean_from, y.end());
            CHECK_MESSAGE(test::relative_rmse(ys, xs) <= roundtrip_bound(qt.type) * 1.5 + 1e-6,
                          std::string(qt.name) << " after " << v);
        }
    }
}
