// The Q4_K_M mix rule. Expected choices are written out by hand from the rule's text ("Q6_K for attn_v and
// ffn_down in the first n/8 layers, the last n/8 layers and every third layer in between; output Q6_K;
// the rest Q4_K; 1-D tensors F32"), and checked against the types llama-quantize actually chose for the
// llama3-tiny fixture.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "gguf/ggml_type.h"
#include "tensor/quantize.h"

namespace pensieve::tensor {
namespace {

using gguf::GgmlType;

std::string layer_tensor(int layer, const char* name) { return "blk." + std::to_string(layer) + "." + name; }

void expect_more_bits_exactly_in(int n_layers, const std::set<int>& q6_layers) {
  for (int layer = 0; layer < n_layers; ++layer) {
    SCOPED_TRACE("layer " + std::to_string(layer) + " of " + std::to_string(n_layers));
    const GgmlType expected = q6_layers.count(layer) ? GgmlType::Q6_K : GgmlType::Q4_K;
    EXPECT_EQ(q4_k_m_type_for(layer_tensor(layer, "attn_v.weight"), layer, n_layers), expected);
    EXPECT_EQ(q4_k_m_type_for(layer_tensor(layer, "ffn_down.weight"), layer, n_layers), expected);
    for (const char* other : {"attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_gate.weight",
                              "ffn_up.weight"}) {
      EXPECT_EQ(q4_k_m_type_for(layer_tensor(layer, other), layer, n_layers), GgmlType::Q4_K) << other;
    }
    for (const char* norm : {"attn_norm.weight", "ffn_norm.weight", "attn_q_norm.weight", "attn_k_norm.weight"}) {
      EXPECT_EQ(q4_k_m_type_for(layer_tensor(layer, norm), layer, n_layers), GgmlType::F32) << norm;
    }
  }
}

// 16 layers: n/8 = 2, so layers 0-1 and 14-15 (>= 7*16/8 = 14), and counting from layer 2 every third one
// at offset 2: layers 4, 7, 10, 13.
TEST(Q4KMMix, SixteenLayers) { expect_more_bits_exactly_in(16, {0, 1, 4, 7, 10, 13, 14, 15}); }

// 32 layers: n/8 = 4: layers 0-3 and 28-31, and from layer 4 every third at offset 2: 6, 9, ..., 27.
TEST(Q4KMMix, ThirtyTwoLayers) {
  expect_more_bits_exactly_in(32, {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31});
}

TEST(Q4KMMix, TensorsOutsideTheBlocks) {
  EXPECT_EQ(q4_k_m_type_for("output.weight", -1, 16), GgmlType::Q6_K);
  EXPECT_EQ(q4_k_m_type_for("token_embd.weight", -1, 16), GgmlType::Q4_K);
  EXPECT_EQ(q4_k_m_type_for("output_norm.weight", -1, 16), GgmlType::F32);
  EXPECT_EQ(q4_k_m_type_for("rope_freqs.weight", -1, 16), GgmlType::F32);
  EXPECT_EQ(q4_k_m_type_for("blk.3.attn_q.bias", 3, 16), GgmlType::F32);
}

TEST(Q4KMMix, ShapeAwareForm) {
  const std::vector<uint64_t> matrix = {2048, 512}, vector = {2048}, odd_rows = {96, 64}, tiny_rows = {100, 10};
  // Tied embeddings: token_embd doubles as the output projection and gets the output's type.
  EXPECT_EQ(q4_k_m_type_for("token_embd.weight", matrix, -1, 16, /*tied_embeddings=*/true), GgmlType::Q6_K);
  EXPECT_EQ(q4_k_m_type_for("token_embd.weight", matrix, -1, 16, /*tied_embeddings=*/false), GgmlType::Q4_K);
  EXPECT_EQ(q4_k_m_type_for("blk.0.ffn_down.weight", matrix, 0, 16, false), GgmlType::Q6_K);
  EXPECT_EQ(q4_k_m_type_for("blk.2.ffn_down.weight", matrix, 2, 16, false), GgmlType::Q4_K);
  // 1-D tensors stay F32 whatever their name.
  EXPECT_EQ(q4_k_m_type_for("blk.0.something.weight", vector, 0, 16, false), GgmlType::F32);
  // Rows that are not whole 256-element super-blocks cannot be K-quantized.
  EXPECT_EQ(q4_k_m_type_for("blk.0.attn_q.weight", odd_rows, 0, 16, false), GgmlType::Q8_0);
  EXPECT_EQ(q4_k_m_type_for("blk.0.attn_q.weight", tiny_rows, 0, 16, false), GgmlType::F16);
}

// llama-quantize's own choices for the two-layer llama3-tiny (n/8 = 0, 7n/8 = 1: only layer 1 gets more
// bits), as recorded in the fixture's golden.
TEST(Q4KMMix, AgreesWithLlamaQuantizeOnTheFixture) {
  const std::filesystem::path path =
      std::filesystem::path(PENSIEVE_FIXTURES_DIR) / "quant" / "llama3-tiny-Q4_K_M.json";
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  std::ifstream stream(path);
  const nlohmann::json golden = nlohmann::json::parse(stream);
  ASSERT_FALSE(golden["tensors"].empty());
  for (const nlohmann::json& tensor : golden["tensors"]) {
    const std::string name = tensor["name"];
    const std::vector<uint64_t> shape = tensor["shape"];
    int layer = -1;
    if (name.starts_with("blk.")) layer = std::stoi(name.substr(4));
    const GgmlType expected = gguf::type_from_name(tensor["type"].get<std::string>()).value();
    EXPECT_EQ(q4_k_m_type_for(name, shape, layer, 2, /*tied_embeddings=*/false), expected) << name;
    EXPECT_EQ(q4_k_m_type_for(name, layer, 2), expected) << name;
  }
}

}  // namespace
}  // namespace pensieve::tensor
