// Random blocks decode (through the reference dequantizers) to finite values
// with the requested spread, the same seed gives the same bytes, and types or
// sizes it cannot fill are refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "formats/fp16.h"
#include "formats/quant_blocks.h"
#include "formats/quant_traits.h"
#include "formats/random_blocks.h"

using namespace kiln;

namespace {

constexpr GgmlType kFillable[] = {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0,
                                  GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::vector<uint8_t> random_tensor(GgmlType type, float sigma, uint64_t seed, int64_t n) {
    std::vector<uint8_t> bytes(*tensor_bytes(type, uint64_t(n)));
    Xoshiro256 rng(seed);
    fill_random(type, sigma, rng, bytes.data(), n);
    return bytes;
}

}  // namespace

TEST_CASE("random blocks: decoded values are finite, zero-mean, with standard deviation sigma") {
    const int64_t n = 256 * 512;
    for (GgmlType type : kFillable) {
        for (float sigma : {0.5f / 64.0f, 0.5f / std::sqrt(11008.0f), 1.0f}) {
            CAPTURE(quant_traits(type).name);
            CAPTURE(sigma);
            REQUIRE(can_fill_random(type));
            const std::vector<float> x = dequantize(type, random_tensor(type, sigma, 42, n).data(), n);
            double sum = 0, sum2 = 0;
            bool finite = true;
            for (float v : x) {
                finite = finite && std::isfinite(v);
                sum += v;
                sum2 += double(v) * v;
            }
            CHECK(finite);
            const double mean = sum / double(n), sd = std::sqrt(sum2 / double(n) - mean * mean);
            CHECK(std::fabs(mean) < 0.02 * sigma);  // the standard error is sigma / 362
            CHECK(sd > 0.93 * sigma);  // fp16 rounding of small scales costs a few percent
            CHECK(sd < 1.07 * sigma);
        }
    }
}

TEST_CASE("random blocks: the same seed gives the same bytes, another seed others, chunks continue the stream") {
    const int64_t n = 256 * 8;
    for (GgmlType type : kFillable) {
        CAPTURE(quant_traits(type).name);
        const std::vector<uint8_t> a = random_tensor(type, 0.01f, 7, n);
        CHECK(a == random_tensor(type, 0.01f, 7, n));
        CHECK(a != random_tensor(type, 0.01f, 8, n));
        // Filling in two calls from one generator gives what one call gives.
        std::vector<uint8_t> b(a.size());
        Xoshiro256 rng(7);
        fill_random(type, 0.01f, rng, b.data(), n / 2);
        fill_random(type, 0.01f, rng, b.data() + b.size() / 2, n / 2);
        CHECK(a == b);
    }
}

TEST_CASE("random blocks: K-quant scales stay in their sub-block ranges and mins centre the quants") {
    const int64_t n = 256 * 64;
    const std::vector<uint8_t> q4 = random_tensor(GgmlType::Q4_K, 0.01f, 3, n);
    const auto* b = reinterpret_cast<const block_q4_K*>(q4.data());
    for (int64_t i = 0; i < n / 256; ++i) {
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            get_scale_min_k4(j, b[i].scales, &sc, &m);
            CHECK(sc >= 32);
            CHECK(sc == m);
        }
        CHECK(fp16_to_fp32(b[i].dmin) == doctest::Approx(7.5f * fp16_to_fp32(b[i].d)).epsilon(0.01));
    }
}

TEST_CASE("random blocks: refuses types without a fill, partial blocks and unusable sigma") {
    std::vector<uint8_t> buf(4096);
    Xoshiro256 rng(1);
    CHECK_FALSE(can_fill_random(GgmlType::Q2_K));
    CHECK_THROWS_WITH_AS(fill_random(GgmlType::Q2_K, 1.0f, rng, buf.data(), 256), doctest::Contains("q2_K"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fill_random(GgmlType::Q4_K, 1.0f, rng, buf.data(), 255), doctest::Contains("block size 256"),
                         std::invalid_argument);
    CHECK_THROWS_AS(fill_random(GgmlType::Q4_0, NAN, rng, buf.data(), 32), std::invalid_argument);
    CHECK_THROWS_AS(fill_random(GgmlType::Q4_0, 0.0f, rng, buf.data(), 32), std::invalid_argument);
    CHECK_THROWS_AS(fill_random(GgmlType::F16, 1e9f, rng, buf.data(), 32), std::invalid_argument);
}

TEST_CASE("Xoshiro256: the reference sequence, and uniform() covers 0 to 1 without reaching 1") {
    // The reference algorithm (prng.di.unimi.it) from splitmix64(0) state, whose
    // first word 0xe220a8397b1dcdaf is splitmix64's published first output.
    Xoshiro256 ref(0);
    CHECK(ref.next() == 0x99ec5f36cb75f2b4ull);
    CHECK(ref.next() == 0xbf6e1f784956452aull);
    CHECK(ref.next() == 0x1a5f849d4933e6e0ull);

    Xoshiro256 rng(0);
    float lo = 1.0f, hi = 0.0f;
    for (int i = 0; i < 100000; ++i) {
        const float u = rng.uniform();
        REQUIRE(u >= 0.0f);
        REQUIRE(u < 1.0f);
        lo = std::min(lo, u);
        hi = std::max(hi, u);
    }
    CHECK(lo < 0.001f);
    CHECK(hi > 0.999f);
}
