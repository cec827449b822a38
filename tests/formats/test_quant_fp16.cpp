// fp16 / bf16 conversions against known bit patterns.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "formats/fp16.h"

using namespace kiln;

namespace {

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

}  // namespace

TEST_CASE("fp32_to_fp16 known bit patterns, round to nearest even") {
    CHECK(fp32_to_fp16(0.0f) == 0x0000);
    CHECK(fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(fp32_to_fp16(1.0f) == 0x3C00);
    CHECK(fp32_to_fp16(-2.0f) == 0xC000);
    CHECK(fp32_to_fp16(0.5f) == 0x3800);
    CHECK(fp32_to_fp16(65504.0f) == 0x7BFF);           // largest finite half
    CHECK(fp32_to_fp16(65519.99f) == 0x7BFF);          // below the midpoint to 65536
    CHECK(fp32_to_fp16(65520.0f) == 0x7C00);           // the midpoint rounds (to even) to infinity
    CHECK(fp32_to_fp16(1e10f) == 0x7C00);
    CHECK(fp32_to_fp16(-1e10f) == 0xFC00);
    // Ties between two halves go to the even mantissa.
    CHECK(fp32_to_fp16(1.0f + 0x1p-11f) == 0x3C00);
    CHECK(fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3C02);
    CHECK(fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3C01);  // just above the tie
    // A mantissa carry moves to the next binade: 2047/1024 rounds up to 2.0.
    CHECK(fp32_to_fp16(2.0f - 0x1p-12f) == 0x4000);
    CHECK(fp32_to_fp16(0.333333333f) == 0x3555);
}

TEST_CASE("fp32_to_fp16 subnormals, infinities and NaN") {
    CHECK(fp32_to_fp16(0x1p-14f) == 0x0400);                 // smallest normal
    CHECK(fp32_to_fp16(1023 * 0x1p-24f) == 0x03FF);          // largest subnormal
    CHECK(fp32_to_fp16(0x1p-24f) == 0x0001);                 // smallest subnormal
    CHECK(fp32_to_fp16(-0x1p-24f) == 0x8001);
    CHECK(fp32_to_fp16(0x1p-25f) == 0x0000);                 // tie between 0 and 1: even
    CHECK(fp32_to_fp16(0x1p-25f + 0x1p-40f) == 0x0001);
    CHECK(fp32_to_fp16(3 * 0x1p-25f) == 0x0002);             // tie between 1 and 2: even
    CHECK(fp32_to_fp16(5 * 0x1p-25f) == 0x0002);             // tie between 2 and 3: even
    CHECK(fp32_to_fp16(1e-10f) == 0x0000);
    CHECK(fp32_to_fp16(-1e-10f) == 0x8000);
    CHECK(fp32_to_fp16(2047 * 0x1p-25f) == 0x0400);          // rounds up into the normals
    CHECK(fp32_to_fp16(std::numeric_limits<float>::infinity()) == 0x7C00);
    CHECK(fp32_to_fp16(-std::numeric_limits<float>::infinity()) == 0xFC00);
    CHECK(fp32_to_fp16(from_bits(0x7FC00000)) == 0x7E00);    // default quiet NaN
    CHECK(fp32_to_fp16(from_bits(0xFFC00000)) == 0xFE00);
    const fp16_t snan = fp32_to_fp16(from_bits(0x7F800001));  // payload below half's mantissa: still NaN
    CHECK((snan & 0x7C00) == 0x7C00);
    CHECK((snan & 0x03FF) != 0);
}

TEST_CASE("fp16_to_fp32 known values and exact round trip of every half") {
    CHECK(fp16_to_fp32(0x3C00) == 1.0f);
    CHECK(fp16_to_fp32(0xFBFF) == -65504.0f);
    CHECK(fp16_to_fp32(0x0001) == 0x1p-24f);
    CHECK(fp16_to_fp32(0x03FF) == 1023 * 0x1p-24f);
    CHECK(fp16_to_fp32(0x3555) == 0.333251953125f);
    CHECK(bits(fp16_to_fp32(0x8000)) == 0x80000000u);
    CHECK(std::isinf(fp16_to_fp32(0x7C00)));
    CHECK(fp16_to_fp32(0xFC00) < 0);
    CHECK(std::isnan(fp16_to_fp32(0x7E00)));
    CHECK(std::isnan(fp16_to_fp32(0x7C01)));
    int mismatches = 0;
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_fp32(fp16_t(h));
        if (std::isnan(f)) {
            const fp16_t back = fp32_to_fp16(f);
            if ((back & 0x7C00) != 0x7C00 || (back & 0x3FF) == 0) ++mismatches;
            continue;
        }
        if (fp32_to_fp16(f) != h) ++mismatches;
    }
    CHECK(mismatches == 0);
}

TEST_CASE("bf16 conversions: round to nearest even, NaN made quiet, subnormals kept") {
    CHECK(fp32_to_bf16(1.0f) == 0x3F80);
    CHECK(fp32_to_bf16(-1.0f) == 0xBF80);
    CHECK(fp32_to_bf16(1.0f + 0x1p-8f) == 0x3F80);          // tie: even
    CHECK(fp32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82);      // tie: even (up)
    CHECK(fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3F81);
    CHECK(fp32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
    CHECK(fp32_to_bf16(from_bits(0x7F7FFFFF)) == 0x7F80);   // FLT_MAX rounds to infinity
    CHECK(fp32_to_bf16(from_bits(0x7FC00000)) == 0x7FC0);
    CHECK(fp32_to_bf16(from_bits(0x7F800001)) == 0x7FC0);   // signalling NaN becomes quiet, not inf
    CHECK(fp32_to_bf16(from_bits(0x00010000)) == 0x0001);   // subnormal kept
    CHECK(bf16_to_fp32(0x3F80) == 1.0f);
    CHECK(bf16_to_fp32(0xC040) == -3.0f);
    CHECK(std::isnan(bf16_to_fp32(0x7FC0)));
}
