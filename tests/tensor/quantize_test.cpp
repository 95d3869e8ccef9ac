// Quantizers: round trips on Gaussian data with error bounds that follow from each format's definition,
// stability under re-quantization, degenerate inputs, and the API's size checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "gguf/ggml_type.h"
#include "tensor/dequantize.h"
#include "tensor/quantize.h"

namespace pensieve::tensor {
namespace {

using gguf::GgmlType;

// fp16 keeps 11 significant bits: storing a (normal) scale moves it by at most this fraction.
constexpr double kHalfRounding = 1.0 / 2048;

std::vector<float> gaussian(size_t n, float std_dev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, std_dev);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

std::vector<std::byte> quantized(GgmlType type, const std::vector<float>& x) {
  std::vector<std::byte> bytes(gguf::bytes_for(static_cast<uint32_t>(type), x.size()).value());
  quantize(type, x, bytes);
  return bytes;
}

std::vector<float> round_trip(GgmlType type, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  dequantize(static_cast<uint32_t>(type), quantized(type, x), y);
  return y;
}

double relative_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double error = 0, energy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    error += double(x[i] - y[i]) * (x[i] - y[i]);
    energy += double(x[i]) * x[i];
  }
  return std::sqrt(error / energy);
}

float max_abs(const float* x, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

class GaussianData : public testing::TestWithParam<float> {
 protected:
  const size_t n_ = 256 * 512;
  std::vector<float> x_ = gaussian(n_, GetParam(), 1234);
};

// Q8_0: d = max|x| / 127 and every element is rounded to the nearest multiple of d, so it is off by at most
// d/2, plus what storing d in fp16 moves a code of magnitude up to 127.
TEST_P(GaussianData, Q8_0StaysWithinHalfAStep) {
  const std::vector<float> y = round_trip(GgmlType::Q8_0, x_);
  for (size_t b = 0; b < n_; b += 32) {
    const double d = max_abs(&x_[b], 32) / 127.0;
    const double bound = d / 2 + 127 * d * kHalfRounding + 1e-6 * d;
    for (size_t i = b; i < b + 32; ++i) ASSERT_LE(std::fabs(x_[i] - y[i]), bound) << i;
  }
  EXPECT_LT(relative_rmse(x_, y), 0.01);
}

// Q4_0: codes -8..7 times d, with the element of largest magnitude on -8, so |d| = max|x| / 8. Rounding costs
// at most |d|/2; elements beyond 7.5|d| on the other side clip to 7|d| and cost at most |d|.
TEST_P(GaussianData, Q4_0StaysWithinHalfAStepExceptTheClippedSide) {
  const std::vector<float> y = round_trip(GgmlType::Q4_0, x_);
  for (size_t b = 0; b < n_; b += 32) {
    const double d = max_abs(&x_[b], 32) / 8.0;
    for (size_t i = b; i < b + 32; ++i) {
      const bool may_clip = std::fabs(x_[i]) > 7.5 * d;
      const double bound = (may_clip ? d : d / 2) + 8 * d * kHalfRounding + 1e-6 * d;
      ASSERT_LE(std::fabs(x_[i] - y[i]), bound) << i;
    }
  }
}

// A plain affine quantizer for groups of n with `levels` steps spanning [min(lowest, 0), highest], scales
// kept in float: what the K-quant search must beat (its scales are additionally squeezed into 6 bits).
double plain_affine_mse(const std::vector<float>& x, size_t group, int levels) {
  double error = 0;
  for (size_t b = 0; b < x.size(); b += group) {
    const float lo = std::min(0.0f, *std::min_element(&x[b], &x[b] + group));
    const float hi = *std::max_element(&x[b], &x[b] + group);
    const float step = (hi - lo) / float(levels);
    for (size_t i = b; i < b + group; ++i) {
      const float y = step > 0 ? lo + step * std::round((x[i] - lo) / step) : lo;
      error += double(x[i] - y) * (x[i] - y);
    }
  }
  return error / double(x.size());
}

// A plain symmetric quantizer: the largest magnitude on code +-31 of -32..31, scale kept in float.
double plain_symmetric_mse(const std::vector<float>& x, size_t group) {
  double error = 0;
  for (size_t b = 0; b < x.size(); b += group) {
    const float step = max_abs(&x[b], group) / 31.0f;
    for (size_t i = b; i < b + group; ++i) {
      const float y = step > 0 ? step * std::round(x[i] / step) : 0.0f;
      error += double(x[i] - y) * (x[i] - y);
    }
  }
  return error / double(x.size());
}

double mse(const std::vector<float>& x, const std::vector<float>& y) {
  double error = 0;
  for (size_t i = 0; i < x.size(); ++i) error += double(x[i] - y[i]) * (x[i] - y[i]);
  return error / double(x.size());
}

// Q4_K: 16 levels over each group of 32. The expected range of 32 Gaussian samples is about 4.1 sigma, so
// plain rounding has a step near 0.27 sigma and an RMSE near step/sqrt(12) = 0.079 sigma. A scale search
// must beat plain rounding (measured: it does by about 10%), so the bound is 0.075 relative RMSE and 0.9
// of the plain quantizer's squared error. Per element: the search may leave a group's extreme up to 0.9 of
// a code outside the grid, and the 6-bit scale and min add rounding, so no element may be off by more
// than 1.25 plain steps of its group.
TEST_P(GaussianData, Q4_KBeatsPlainRounding) {
  const std::vector<float> y = round_trip(GgmlType::Q4_K, x_);
  EXPECT_LT(relative_rmse(x_, y), 0.075);
  EXPECT_LT(mse(x_, y), 0.9 * plain_affine_mse(x_, 32, 15));
  for (size_t b = 0; b < n_; b += 32) {
    const float lo = std::min(0.0f, *std::min_element(&x_[b], &x_[b] + 32));
    const float hi = *std::max_element(&x_[b], &x_[b] + 32);
    for (size_t i = b; i < b + 32; ++i) ASSERT_LE(std::fabs(x_[i] - y[i]), 1.25 * (hi - lo) / 15) << i;
  }
}

// Q6_K: 64 levels, symmetric, over groups of 16. The largest of 16 |Gaussian| samples is about 2 sigma,
// so a step of max/32 is about 0.063 sigma and plain rounding gives an RMSE near 0.018 sigma. The search
// must do at least as well as plain rounding despite 8-bit group scales: bound 0.0185 and the plain error.
TEST_P(GaussianData, Q6_KBeatsPlainRounding) {
  const std::vector<float> y = round_trip(GgmlType::Q6_K, x_);
  EXPECT_LT(relative_rmse(x_, y), 0.0185);
  EXPECT_LT(mse(x_, y), plain_symmetric_mse(x_, 16));
  for (size_t b = 0; b < n_; b += 16) {
    const double step = max_abs(&x_[b], 16) / 31.0;
    for (size_t i = b; i < b + 16; ++i) ASSERT_LE(std::fabs(x_[i] - y[i]), step) << i;
  }
}

// Quantizing what was just dequantized must give the same blocks back: every value already sits on the
// grid, and a scale search worth its name finds that grid again.
TEST_P(GaussianData, RequantizingDequantizedDataIsStable) {
  for (const GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    SCOPED_TRACE(gguf::type_name(static_cast<uint32_t>(type)));
    const std::vector<float> once = round_trip(type, x_);
    const std::vector<float> twice = round_trip(type, once);
    size_t moved = 0;
    for (size_t i = 0; i < n_; ++i) moved += once[i] != twice[i];
    EXPECT_EQ(moved, 0u);
    EXPECT_EQ(quantized(type, once), quantized(type, twice));
  }
}

INSTANTIATE_TEST_SUITE_P(StdDev, GaussianData, testing::Values(0.02f, 1.0f),
                         [](const auto& info) { return info.param == 1.0f ? "std1" : "std0_02"; });

TEST(Quantize, PlainFloatsNarrowElementByElement) {
  const std::vector<float> x = gaussian(1024, 3.0f, 7);
  const std::vector<float> f32 = round_trip(GgmlType::F32, x);
  const std::vector<float> f16 = round_trip(GgmlType::F16, x);
  const std::vector<float> bf16 = round_trip(GgmlType::BF16, x);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(f32[i], x[i]);
    ASSERT_EQ(f16[i], fp16_to_fp32(fp32_to_fp16(x[i])));
    ASSERT_EQ(bf16[i], bf16_to_fp32(fp32_to_bf16(x[i])));
  }
}

// Degenerate blocks must come back as finite values close to the input, never NaN.
TEST(Quantize, DegenerateBlocksStayFiniteAndClose) {
  struct Case {
    const char* name;
    std::vector<float> x;
    double tolerance;  // absolute
  };
  std::vector<float> outlier(256, 0.01f);
  outlier[77] = 50.0f;
  std::vector<float> ramp(256);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = float(i) - 128.0f;
  const std::vector<Case> cases = {
      {"zeros", std::vector<float>(256, 0.0f), 0.0},
      {"constant positive", std::vector<float>(256, 0.5f), 0.5 / 8},
      {"constant negative", std::vector<float>(256, -3.0f), 3.0 / 8},
      {"tiny", std::vector<float>(256, 1e-9f), 1e-8},
      {"one outlier", outlier, 50.0 / 8},
      {"ramp", ramp, 128.0 / 8},
  };
  for (const Case& c : cases) {
    for (const GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
      SCOPED_TRACE(std::string(c.name) + " " + std::string(gguf::type_name(static_cast<uint32_t>(type))));
      const std::vector<float> y = round_trip(type, c.x);
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << i;
        ASSERT_LE(std::fabs(y[i] - c.x[i]), c.tolerance) << i;
      }
    }
  }
}

TEST(Quantize, ChecksSizesAndTypes) {
  EXPECT_TRUE(can_quantize(GgmlType::F32));
  EXPECT_TRUE(can_quantize(GgmlType::F16));
  EXPECT_TRUE(can_quantize(GgmlType::BF16));
  EXPECT_TRUE(can_quantize(GgmlType::Q8_0));
  EXPECT_TRUE(can_quantize(GgmlType::Q4_0));
  EXPECT_TRUE(can_quantize(GgmlType::Q4_K));
  EXPECT_TRUE(can_quantize(GgmlType::Q6_K));
  EXPECT_FALSE(can_quantize(GgmlType::Q5_K));
  EXPECT_FALSE(can_quantize(GgmlType::IQ2_XXS));

  std::vector<float> x(256, 1.0f);
  std::vector<std::byte> out(144);
  EXPECT_NO_THROW(quantize(GgmlType::Q4_K, x, out));
  std::vector<std::byte> short_out(143);
  EXPECT_THROW(quantize(GgmlType::Q4_K, x, short_out), std::invalid_argument);
  std::vector<float> partial(100, 1.0f);
  EXPECT_THROW(quantize(GgmlType::Q4_K, partial, out), std::invalid_argument);
  EXPECT_THROW(quantize(GgmlType::Q5_K, x, out), std::invalid_argument);
}

}  // namespace
}  // namespace pensieve::tensor
