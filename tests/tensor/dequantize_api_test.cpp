// dequantize()'s contract: which types it reads, its errors, block geometry agreeing with the GGUF
// reader's type table, and a few blocks built by hand from the format definitions.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "gguf/ggml_type.h"
#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"

namespace pensieve::tensor {
namespace {

using gguf::GgmlType;

const std::vector<GgmlType> kReadable = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
    GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
    GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS};

template <typename Block>
std::vector<std::byte> bytes_of(const Block& block) {
  std::vector<std::byte> bytes(sizeof(Block));
  std::memcpy(bytes.data(), &block, sizeof(Block));
  return bytes;
}

TEST(Dequantize, ReadsExactlyTheSupportedTypes) {
  for (const GgmlType type : kReadable) EXPECT_TRUE(can_dequantize(static_cast<uint32_t>(type)));
  for (const GgmlType type : {GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::IQ2_XXS, GgmlType::IQ3_S,
                              GgmlType::IQ1_M, GgmlType::I32, GgmlType::F64, GgmlType::TQ2_0}) {
    EXPECT_FALSE(can_dequantize(static_cast<uint32_t>(type)));
  }
  EXPECT_FALSE(can_dequantize(99));
}

// A whole block of every readable type must be exactly what the GGUF reader's type table says, or the
// reader's bounds checks and our decoding would disagree about where tensors end.
TEST(Dequantize, BlockGeometryMatchesTheGgufTypeTable) {
  for (const GgmlType type : kReadable) {
    const auto id = static_cast<uint32_t>(type);
    SCOPED_TRACE(gguf::type_name(id));
    const auto traits = gguf::type_traits(id);
    ASSERT_TRUE(traits.has_value());
    std::vector<std::byte> block(traits->block_bytes);
    std::vector<float> out(traits->block_elements);
    EXPECT_NO_THROW(dequantize(id, block, out));
    std::vector<std::byte> short_block(traits->block_bytes - 1);
    EXPECT_THROW(dequantize(id, short_block, out), std::invalid_argument);
  }
}

TEST(Dequantize, RejectsPartialBlocksAndUnreadableTypes) {
  std::vector<std::byte> bytes(sizeof(BlockQ4_K));
  std::vector<float> partial(255);
  EXPECT_THROW(dequantize(static_cast<uint32_t>(GgmlType::Q4_K), bytes, partial), std::invalid_argument);
  std::vector<float> out(256);
  EXPECT_THROW(dequantize(static_cast<uint32_t>(GgmlType::IQ2_XXS), bytes, out), UnsupportedTypeError);
}

TEST(Dequantize, RequireSupportedNamesTheTensorAndType) {
  gguf::TensorInfo tensor;
  tensor.name = "blk.0.attn_q.weight";
  tensor.type_id = static_cast<uint32_t>(GgmlType::IQ2_XXS);
  try {
    require_supported(tensor);
    FAIL() << "IQ2_XXS accepted";
  } catch (const UnsupportedTypeError& e) {
    EXPECT_STREQ(e.what(), "tensor 'blk.0.attn_q.weight' has type IQ2_XXS, which pensieve cannot read");
  }
  tensor.type_id = static_cast<uint32_t>(GgmlType::Q6_K);
  EXPECT_NO_THROW(require_supported(tensor));
}

// Q4_0 by its definition: x = d * (q - 8), element j in the low nibble of byte j, element j+16 in the high.
TEST(Dequantize, HandBuiltQ4_0Block) {
  BlockQ4_0 block{};
  block.d = 0x3800;  // 0.5
  for (int j = 0; j < 16; ++j) block.qs[j] = uint8_t(j | ((15 - j) << 4));
  std::vector<float> out(32);
  dequantize(static_cast<uint32_t>(GgmlType::Q4_0), bytes_of(block), out);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * float(j - 8)) << j;
    EXPECT_EQ(out[j + 16], 0.5f * float(7 - j)) << j;
  }
}

// Q5_1: x = d * q + m with the fifth bit of element j in bit j of qh (little-endian 32-bit).
TEST(Dequantize, HandBuiltQ5_1Block) {
  BlockQ5_1 block{};
  block.d = 0x3c00;  // 1
  block.m = 0xc000;  // -2
  const uint32_t high = 0x80000001u;  // elements 0 and 31 get +16
  std::memcpy(block.qh, &high, 4);
  block.qs[0] = 0x21;   // element 0 = 1, element 16 = 2
  block.qs[15] = 0xf0;  // element 15 = 0, element 31 = 15
  std::vector<float> out(32);
  dequantize(static_cast<uint32_t>(GgmlType::Q5_1), bytes_of(block), out);
  EXPECT_EQ(out[0], 17.0f - 2.0f);
  EXPECT_EQ(out[16], 2.0f - 2.0f);
  EXPECT_EQ(out[15], -2.0f);
  EXPECT_EQ(out[31], 31.0f - 2.0f);
  EXPECT_EQ(out[1], -2.0f);
}

// IQ4_NL: the code indexes the fixed table; x = d * table[q].
TEST(Dequantize, HandBuiltIq4NlBlock) {
  BlockIQ4_NL block{};
  block.d = 0x4000;  // 2
  block.qs[3] = 0xf0;  // element 3 -> code 0 (-127), element 19 -> code 15 (113)
  std::vector<float> out(32);
  dequantize(static_cast<uint32_t>(GgmlType::IQ4_NL), bytes_of(block), out);
  EXPECT_EQ(out[3], -254.0f);
  EXPECT_EQ(out[19], 226.0f);
  EXPECT_EQ(out[0], -254.0f);  // code 0 everywhere else too
}

}  // namespace
}  // namespace pensieve::tensor
