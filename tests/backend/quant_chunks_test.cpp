// The chunk decoders the CUDA kernels run (backend/cuda/quant_chunks.h), compiled for the host and held to
// tensor::dequantize on real files of every weight type: llama.cpp's quantizations of llama3-tiny
// (fixtures/quant) and the converter's F32/F16/BF16/Q8_0 files (fixtures/models). Runs everywhere, so the
// device decoders are checked on machines without a GPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "backend/cuda/quant_chunks.h"
#include "gguf/gguf_file.h"
#include "tensor/dequantize.h"

namespace pensieve::backend::cuda {
namespace {

const std::filesystem::path kFixtures = PENSIEVE_FIXTURES_DIR;

// Decodes every chunk of up to `max_rows` rows of each 2-D tensor and compares with tensor::dequantize;
// adds the GGML types seen to `seen`.
void check_file(const std::filesystem::path& path, int max_rows, std::set<uint32_t>& seen) {
  const gguf::GgufFile file = gguf::GgufFile::open(path);
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (t.shape.size() != 2) continue;
    SCOPED_TRACE(path.filename().string() + " " + t.name);
    const auto cols = static_cast<size_t>(t.shape[0]);
    const auto rows = static_cast<size_t>(t.shape[1]);
    const auto row_bytes = static_cast<size_t>(*gguf::bytes_for(t.type_id, cols));
    const auto type = static_cast<QuantType>(t.type_id);
    EXPECT_EQ(quant_bytes(type, cols), row_bytes) << "quant_format of type " << t.type_id;
    const std::span<const std::byte> data = file.tensor_data(t);
    std::vector<float> expected(cols), got(cols);
    for (size_t r = 0; r < rows && r < static_cast<size_t>(max_rows); ++r) {
      const std::span<const std::byte> row = data.subspan(r * row_bytes, row_bytes);
      tensor::dequantize(t.type_id, row, expected);
      const auto* bytes = reinterpret_cast<const uint8_t*>(row.data());
      const bool known = dispatch_quant_type(t.type_id, [&]<QuantType T>() {
        for (size_t c = 0; c < cols / 32; ++c) decode_chunk<T>(bytes, static_cast<int>(c), got.data() + 32 * c);
      });
      ASSERT_TRUE(known) << "no chunk decoder for type " << t.type_id;
      for (size_t i = 0; i < cols; ++i) ASSERT_EQ(got[i], expected[i]) << "row " << r << " element " << i;
    }
    seen.insert(t.type_id);
  }
}

TEST(QuantChunks, EveryQuantizedTypeDecodesAsTheReferenceDoes) {
  std::set<uint32_t> seen;
  for (const char* type : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K",
                           "IQ4_NL", "IQ4_XS"}) {
    const auto path = kFixtures / "quant" / (std::string("llama3-tiny-") + type + ".gguf");
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    check_file(path, 8, seen);
  }
  for (QuantType t : {QuantType::Q4_0, QuantType::Q4_1, QuantType::Q5_0, QuantType::Q5_1, QuantType::Q8_0,
                      QuantType::Q2_K, QuantType::Q3_K, QuantType::Q4_K, QuantType::Q5_K, QuantType::Q6_K,
                      QuantType::IQ4_NL, QuantType::IQ4_XS}) {
    EXPECT_TRUE(seen.count(static_cast<uint32_t>(t))) << "no fixture tensor of type " << static_cast<uint32_t>(t);
  }
}

TEST(QuantChunks, FloatTypesDecodeAsTheReferenceDoes) {
  std::set<uint32_t> seen;
  for (const char* type : {"f32", "f16", "bf16"}) {
    const auto path = kFixtures / "models" / "llama-tiny" / (std::string("llama-tiny-") + type + ".gguf");
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    check_file(path, 4, seen);
  }
  for (QuantType t : {QuantType::F32, QuantType::F16, QuantType::BF16}) {
    EXPECT_TRUE(seen.count(static_cast<uint32_t>(t))) << "no fixture tensor of type " << static_cast<uint32_t>(t);
  }
}

}  // namespace
}  // namespace pensieve::backend::cuda
