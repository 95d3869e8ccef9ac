// Dequantization checked against gguf-py's numpy dequantizer: for every tensor of the llama3-tiny files
// quantized by llama.cpp's llama-quantize (fixtures/quant), the first 64 values and the float64 sum and sum
// of squares. Also the float files of fixtures/models, written by llama.cpp's converter: their F16/BF16
// tensors must be the round-to-nearest-even narrowing of the F32 file's values, and their Q8_0 tensors
// what gguf-py's Q8_0 quantizer makes of them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "tensor/dequantize.h"
#include "tensor/quantize.h"

namespace pensieve::tensor {
namespace {

const std::filesystem::path kFixtures = PENSIEVE_FIXTURES_DIR;

std::vector<float> dequantize_tensor(const gguf::GgufFile& file, const gguf::TensorInfo& info) {
  std::vector<float> values(info.elements());
  dequantize(info.type_id, file.tensor_data(info), values);
  return values;
}

class QuantGolden : public testing::TestWithParam<std::string> {};

TEST_P(QuantGolden, EveryTensorMatchesGgufPy) {
  const std::filesystem::path gguf_path = kFixtures / "quant" / ("llama3-tiny-" + GetParam() + ".gguf");
  const std::filesystem::path json_path = kFixtures / "quant" / ("llama3-tiny-" + GetParam() + ".json");
  ASSERT_TRUE(std::filesystem::exists(gguf_path)) << gguf_path;
  ASSERT_TRUE(std::filesystem::exists(json_path)) << json_path;
  const gguf::GgufFile file = gguf::GgufFile::open(gguf_path);
  std::ifstream json_stream(json_path);
  const nlohmann::json golden = nlohmann::json::parse(json_stream);
  ASSERT_EQ(golden["tensors"].size(), file.tensors().size());

  for (const nlohmann::json& expected : golden["tensors"]) {
    const std::string name = expected["name"];
    SCOPED_TRACE(name);
    const gguf::TensorInfo* info = file.find_tensor(name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(gguf::type_name(info->type_id), expected["type"].get<std::string>());
    EXPECT_EQ(info->shape, expected["shape"].get<std::vector<uint64_t>>());
    ASSERT_EQ(info->elements(), expected["n"].get<uint64_t>());
    ASSERT_NO_THROW(require_supported(*info));

    const std::vector<float> values = dequantize_tensor(file, *info);
    const std::vector<double> first = expected["first_values"];
    ASSERT_LE(first.size(), values.size());
    for (size_t i = 0; i < first.size(); ++i) {
      // Same float32 operations in the same order as numpy, so agreement is to the last bit or two.
      EXPECT_NEAR(values[i], first[i], 1e-6 * std::fabs(first[i]) + 1e-9) << "element " << i;
    }
    double sum = 0, sum_sq = 0, sum_abs = 0;
    for (const float v : values) {
      sum += v;
      sum_sq += double(v) * v;
      sum_abs += std::fabs(v);
    }
    // Per-element differences of 1e-6 relative can move the sum by at most 1e-6 * sum|x|.
    EXPECT_NEAR(sum, expected["sum"].get<double>(), 1e-6 * sum_abs + 1e-9);
    EXPECT_NEAR(sum_sq, expected["sum_sq"].get<double>(), 2e-6 * expected["sum_sq"].get<double>() + 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(LlamaQuantize, QuantGolden,
                         testing::Values("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M",
                                         "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"));

// The converter narrows the F32 checkpoint; our narrowing and widening must agree with it bit for bit.
class ConverterGolden : public testing::TestWithParam<std::pair<std::string, gguf::GgmlType>> {};

TEST_P(ConverterGolden, MatchesOurQuantizationOfTheF32File) {
  const auto& [suffix, type] = GetParam();
  const std::filesystem::path dir = kFixtures / "models" / "llama3-tiny";
  ASSERT_TRUE(std::filesystem::exists(dir / "llama3-tiny-f32.gguf"));
  ASSERT_TRUE(std::filesystem::exists(dir / ("llama3-tiny-" + suffix + ".gguf")));
  const gguf::GgufFile reference = gguf::GgufFile::open(dir / "llama3-tiny-f32.gguf");
  const gguf::GgufFile converted = gguf::GgufFile::open(dir / ("llama3-tiny-" + suffix + ".gguf"));

  int checked = 0;
  for (const gguf::TensorInfo& info : converted.tensors()) {
    if (info.type_id != static_cast<uint32_t>(type)) continue;
    SCOPED_TRACE(info.name);
    const gguf::TensorInfo* source = reference.find_tensor(info.name);
    ASSERT_NE(source, nullptr);
    ASSERT_EQ(source->type_id, static_cast<uint32_t>(gguf::GgmlType::F32));
    const std::vector<float> original = dequantize_tensor(reference, *source);

    std::vector<std::byte> ours(info.n_bytes);
    quantize(type, original, ours);
    const std::span<const std::byte> theirs = converted.tensor_data(info);
    ASSERT_EQ(ours.size(), theirs.size());
    size_t differing = 0;
    for (size_t i = 0; i < ours.size(); ++i) differing += ours[i] != theirs[i];
    EXPECT_EQ(differing, 0u);

    const std::vector<float> widened = dequantize_tensor(converted, info);
    std::vector<float> ours_widened(widened.size());
    dequantize(info.type_id, ours, ours_widened);
    EXPECT_EQ(widened, ours_widened);
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no " << suffix << " tensors in the converted file";
}

INSTANTIATE_TEST_SUITE_P(LlamaConverter, ConverterGolden,
                         testing::Values(std::pair{std::string("f16"), gguf::GgmlType::F16},
                                         std::pair{std::string("bf16"), gguf::GgmlType::BF16},
                                         std::pair{std::string("q8_0"), gguf::GgmlType::Q8_0}),
                         [](const auto& info) { return info.param.first; });

}  // namespace
}  // namespace pensieve::tensor
