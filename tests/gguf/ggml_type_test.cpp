// Block geometry of every GGML type, from the block layouts of ggml's formats (e.g. Q4_K: fp16 d, fp16 dmin,
// 12 bytes of packed 6-bit scales, 128 bytes of nibbles = 144 bytes per 256 elements).
#include <gtest/gtest.h>

#include <limits>

#include "gguf/ggml_type.h"

using namespace pensieve::gguf;

namespace {

struct Geometry {
  GgmlType type;
  uint32_t id;
  const char* name;
  uint32_t block_elements;
  uint32_t block_bytes;
};

// Ids from the GGUF spec's ggml_type enum; sizes from each block struct's fields.
const Geometry kGeometry[] = {
    {GgmlType::F32, 0, "F32", 1, 4},           {GgmlType::F16, 1, "F16", 1, 2},
    {GgmlType::Q4_0, 2, "Q4_0", 32, 2 + 16},   {GgmlType::Q4_1, 3, "Q4_1", 32, 2 + 2 + 16},
    {GgmlType::Q5_0, 6, "Q5_0", 32, 2 + 4 + 16}, {GgmlType::Q5_1, 7, "Q5_1", 32, 2 + 2 + 4 + 16},
    {GgmlType::Q8_0, 8, "Q8_0", 32, 2 + 32},   {GgmlType::Q8_1, 9, "Q8_1", 32, 2 + 2 + 32},
    {GgmlType::Q2_K, 10, "Q2_K", 256, 16 + 64 + 2 + 2},
    {GgmlType::Q3_K, 11, "Q3_K", 256, 32 + 64 + 12 + 2},
    {GgmlType::Q4_K, 12, "Q4_K", 256, 2 + 2 + 12 + 128},
    {GgmlType::Q5_K, 13, "Q5_K", 256, 2 + 2 + 12 + 32 + 128},
    {GgmlType::Q6_K, 14, "Q6_K", 256, 128 + 64 + 16 + 2},
    {GgmlType::Q8_K, 15, "Q8_K", 256, 4 + 256 + 16 * 2},
    {GgmlType::IQ2_XXS, 16, "IQ2_XXS", 256, 2 + 64},
    {GgmlType::IQ2_XS, 17, "IQ2_XS", 256, 2 + 64 + 8},
    {GgmlType::IQ3_XXS, 18, "IQ3_XXS", 256, 2 + 96},
    {GgmlType::IQ1_S, 19, "IQ1_S", 256, 2 + 32 + 16},
    {GgmlType::IQ4_NL, 20, "IQ4_NL", 32, 2 + 16},
    {GgmlType::IQ3_S, 21, "IQ3_S", 256, 2 + 64 + 32 + 8 + 4},
    {GgmlType::IQ2_S, 22, "IQ2_S", 256, 2 + 64 + 8 + 8},
    {GgmlType::IQ4_XS, 23, "IQ4_XS", 256, 2 + 2 + 4 + 128},
    {GgmlType::I8, 24, "I8", 1, 1},            {GgmlType::I16, 25, "I16", 1, 2},
    {GgmlType::I32, 26, "I32", 1, 4},          {GgmlType::I64, 27, "I64", 1, 8},
    {GgmlType::F64, 28, "F64", 1, 8},
    {GgmlType::IQ1_M, 29, "IQ1_M", 256, 32 + 16 + 8},
    {GgmlType::BF16, 30, "BF16", 1, 2},
    {GgmlType::TQ1_0, 34, "TQ1_0", 256, 48 + 4 + 2},
    {GgmlType::TQ2_0, 35, "TQ2_0", 256, 64 + 2},
    {GgmlType::MXFP4, 39, "MXFP4", 32, 1 + 16},
};

TEST(GgmlType, EveryTypeHasItsSpecGeometry) {
  for (const Geometry& g : kGeometry) {
    SCOPED_TRACE(g.name);
    EXPECT_EQ(static_cast<uint32_t>(g.type), g.id);
    auto traits = type_traits(g.id);
    ASSERT_TRUE(traits);
    EXPECT_EQ(traits->name, g.name);
    EXPECT_EQ(traits->block_elements, g.block_elements);
    EXPECT_EQ(traits->block_bytes, g.block_bytes);
    EXPECT_EQ(type_name(g.id), g.name);
    EXPECT_EQ(type_from_name(g.name), g.type);
  }
}

TEST(GgmlType, RetiredAndFutureIdsAreUnknown) {
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u, std::numeric_limits<uint32_t>::max()}) {
    EXPECT_FALSE(type_traits(id)) << id;
    EXPECT_EQ(type_name(id), "unknown") << id;
    EXPECT_FALSE(bytes_for(id, 256)) << id;
  }
}

TEST(GgmlType, NamesMatchIgnoringCase) {
  EXPECT_EQ(type_from_name("q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(type_from_name("bf16"), GgmlType::BF16);
  EXPECT_FALSE(type_from_name("Q4_K_M"));  // a mix of types, not a type
  EXPECT_FALSE(type_from_name(""));
}

TEST(GgmlType, BytesForWholeBlocks) {
  EXPECT_EQ(bytes_for(0, 10), 40u);
  EXPECT_EQ(bytes_for(12, 4096 * 256), 4096u * 144);
  EXPECT_EQ(bytes_for(8, 0), 0u);
  EXPECT_FALSE(bytes_for(8, 33));   // not a whole number of Q8_0 blocks
  EXPECT_FALSE(bytes_for(12, 128)); // half a Q4_K block
}

TEST(GgmlType, BytesForRefusesOverflow) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_FALSE(bytes_for(0, max / 4 + 1));  // F32: 4 * elements overflows
  EXPECT_EQ(bytes_for(0, max / 4), max / 4 * 4);
  EXPECT_EQ(bytes_for(24, max), max);  // I8: one byte each
  EXPECT_FALSE(bytes_for(15, (max / 256) * 256));  // Q8_K: 292 bytes per 256 elements overflows
}

}  // namespace
