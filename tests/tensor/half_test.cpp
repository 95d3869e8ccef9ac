// fp16 / bf16 conversions checked against IEEE 754 from first principles: exact values of known bit
// patterns, and exhaustive checks over all 65536 half patterns (round trip, and ties-to-even at every
// midpoint between neighbouring halves).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tensor/dequantize.h"

namespace pensieve::tensor {
namespace {

bool is_half_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool is_bf16_nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0; }

TEST(Fp16, WidensKnownPatterns) {
  EXPECT_EQ(fp16_to_fp32(0x0000), 0.0f);
  EXPECT_FALSE(std::signbit(fp16_to_fp32(0x0000)));
  EXPECT_EQ(fp16_to_fp32(0x8000), 0.0f);
  EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x3555), 0x1.554p-2f);  // 0.333251953125
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);     // largest finite half
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03ff), 1023.0f * std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7e00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));  // signalling-pattern NaN is still NaN
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0xffff)));
}

TEST(Fp16, NarrowsKnownValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-1.5f), 0xbe00);
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bff);  // just below the midpoint to 2^16
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);    // the midpoint: ties to even, and the even side is inf
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(is_half_nan(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(is_half_nan(fp32_to_fp16(std::bit_cast<float>(0x7f800001u))));  // payload only in low bits
  EXPECT_TRUE(is_half_nan(fp32_to_fp16(std::bit_cast<float>(0xffc00000u))));
  // Ties to even at 1 + 2^-11 (between 0x3c00 and 0x3c01) and 1 + 3*2^-11 (between 0x3c01 and 0x3c02).
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  // Subnormal results.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);                   // tie between 0 and 1 unit
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25) * 1.0000001f), 0x0001);     // just above that tie
  EXPECT_EQ(fp32_to_fp16(3 * std::ldexp(1.0f, -25)), 0x0002);              // 1.5 units: tie to 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)), 0x0400);  // rounds up to normal
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(fp32_to_fp16(1e-45f), 0x0000);   // a float subnormal
  EXPECT_EQ(fp32_to_fp16(-1e-45f), 0x8000);  // keeps the sign of zero
}

TEST(Fp16, EveryHalfRoundTripsAndNaNsStayNaN) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(uint16_t(h));
    if (is_half_nan(uint16_t(h))) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(is_half_nan(fp32_to_fp16(f))) << h;
    } else {
      ASSERT_EQ(fp32_to_fp16(f), h) << h;
    }
  }
}

// Between two neighbouring finite halves a < b, the exact midpoint must go to the one with an even
// mantissa, and the floats just beside it to the nearer half. Midpoints have at most 12 significant bits,
// so they are exact in binary32.
TEST(Fp16, EveryMidpointRoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const float a = fp16_to_fp32(uint16_t(h));
    const float b = fp16_to_fp32(uint16_t(h + 1));
    const float mid = a + (b - a) / 2;
    const uint32_t even = (h % 2 == 0) ? h : h + 1;
    ASSERT_EQ(fp32_to_fp16(mid), even) << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 0.0f)), h) << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 1e9f)), h + 1) << h;
    ASSERT_EQ(fp32_to_fp16(-mid), even | 0x8000u) << h;
  }
}

TEST(Bf16, WidensByShifting) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(bf16_to_fp32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_fp32(0x7fc0)));
  EXPECT_EQ(bf16_to_fp32(0x0001), std::bit_cast<float>(0x00010000u));  // a float subnormal
  EXPECT_TRUE(std::signbit(bf16_to_fp32(0x8000)));
}

TEST(Bf16, NarrowsWithTiesToEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie: even stays
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie: odd goes up
  EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds over the top to inf
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie, odd goes up
  // NaNs whose payload sits only in the dropped low bits must not turn into infinity.
  EXPECT_TRUE(is_bf16_nan(fp32_to_bf16(std::bit_cast<float>(0x7f800001u))));
  EXPECT_TRUE(is_bf16_nan(fp32_to_bf16(std::bit_cast<float>(0xff800001u))));
  EXPECT_TRUE(is_bf16_nan(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
}

TEST(Bf16, EveryBf16RoundTripsAndNaNsStayNaN) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_fp32(uint16_t(h));
    if (is_bf16_nan(uint16_t(h))) {
      ASSERT_TRUE(is_bf16_nan(fp32_to_bf16(f))) << h;
    } else {
      ASSERT_EQ(fp32_to_bf16(f), h) << h;
    }
  }
}

}  // namespace
}  // namespace pensieve::tensor
