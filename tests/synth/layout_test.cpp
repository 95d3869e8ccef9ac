// Tensor names, shapes and order against GGUFs written by llama.cpp's converter, and against first principles
// for the real-model presets.
#include <gtest/gtest.h>

#include "fixture_models.h"
#include "gguf/gguf_file.h"
#include "synth/preset.h"
#include "synth/tensor_layout.h"
#include "tensor/dequantize.h"

namespace pensieve::synth {
namespace {

using testing::fixtures;
using testing::shape_from_config;

class ConverterLayout : public ::testing::TestWithParam<std::string> {};

TEST_P(ConverterLayout, MatchesConverterTensorListAndOrder) {
  const std::string model = GetParam();
  const auto file = gguf::GgufFile::open(fixtures() / "models" / model / (model + "-f32.gguf"));
  const ModelShape shape = shape_from_config(model);
  const auto plan = tensor_layout(shape, 512);
  ASSERT_EQ(plan.size(), file.tensors().size());
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].name, file.tensors()[i].name) << "tensor #" << i;
    EXPECT_EQ(plan[i].shape, file.tensors()[i].shape) << plan[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ConverterLayout, ::testing::Values("llama-tiny", "llama3-tiny", "qwen3-tiny"));

TEST(RopeFreqs, MatchConverterOutputForLlama3Scaling) {
  const auto file = gguf::GgufFile::open(fixtures() / "models/llama3-tiny/llama3-tiny-f32.gguf");
  const gguf::TensorInfo* t = file.find_tensor("rope_freqs.weight");
  ASSERT_NE(t, nullptr);
  std::vector<float> expected(t->elements());
  tensor::dequantize(t->type_id, file.tensor_data(*t), expected);
  const auto factors = llama3_rope_factors(shape_from_config("llama3-tiny"));
  ASSERT_EQ(factors.size(), expected.size());
  for (size_t i = 0; i < factors.size(); ++i) EXPECT_NEAR(factors[i], expected[i], 1e-6f * expected[i]) << i;
}

TEST(RopeFreqs, AbsentWithoutLlama3Scaling) {
  EXPECT_TRUE(llama3_rope_factors(shape_from_config("llama-tiny")).empty());
  EXPECT_TRUE(llama3_rope_factors(find_preset("qwen3-0.6b")).empty());
}

const TensorPlan* find(const std::vector<TensorPlan>& plan, const std::string& name) {
  for (const auto& t : plan)
    if (t.name == name) return &t;
  return nullptr;
}

TEST(Presets, Llama32OneBillionFromFirstPrinciples) {
  const auto plan = tensor_layout(find_preset("llama-3.2-1b"), 128256);
  // rope_freqs, token_embd (tied: no output.weight), output_norm, and 9 tensors in each of 16 blocks.
  ASSERT_EQ(plan.size(), 3u + 16u * 9u);
  EXPECT_EQ(plan[0].name, "rope_freqs.weight");
  EXPECT_EQ(plan[0].shape, (std::vector<uint64_t>{32}));  // head_dim 64 / 2
  EXPECT_EQ(plan[1].name, "token_embd.weight");
  EXPECT_EQ(plan[1].shape, (std::vector<uint64_t>{2048, 128256}));
  EXPECT_EQ(find(plan, "output.weight"), nullptr);
  EXPECT_EQ(find(plan, "blk.15.attn_q.weight")->shape, (std::vector<uint64_t>{2048, 2048}));
  EXPECT_EQ(find(plan, "blk.15.attn_k.weight")->shape, (std::vector<uint64_t>{2048, 512}));  // 8 kv heads x 64
  EXPECT_EQ(find(plan, "blk.0.ffn_down.weight")->shape, (std::vector<uint64_t>{8192, 2048}));
  EXPECT_EQ(find(plan, "blk.0.ffn_gate.weight")->shape, (std::vector<uint64_t>{2048, 8192}));
  // HF checkpoints list tensors sorted by name: layer 10 comes right after layer 1.
  EXPECT_EQ(plan[2].name, "blk.0.attn_norm.weight");  // HF input_layernorm sorts first in its block
  EXPECT_EQ(plan[3].name, "blk.0.ffn_down.weight");   // then mlp.down_proj
  EXPECT_EQ(plan[2 + 9].name, "blk.1.attn_norm.weight");
  EXPECT_EQ(plan[2 + 18].name, "blk.10.attn_norm.weight");
  EXPECT_EQ(plan.back().name, "output_norm.weight");
}

TEST(Presets, Qwen2HasQkvBiasesAndUntiedOutputFor7B) {
  const auto plan = tensor_layout(find_preset("qwen2.5-7b"), 152064);
  ASSERT_NE(find(plan, "output.weight"), nullptr);
  EXPECT_EQ(find(plan, "output.weight")->shape, (std::vector<uint64_t>{3584, 152064}));
  EXPECT_EQ(find(plan, "blk.3.attn_q.bias")->shape, (std::vector<uint64_t>{3584}));
  EXPECT_EQ(find(plan, "blk.3.attn_k.bias")->shape, (std::vector<uint64_t>{512}));  // 4 kv heads x 128
  EXPECT_EQ(find(plan, "blk.3.attn_v.bias")->shape, (std::vector<uint64_t>{512}));
  EXPECT_EQ(find(plan, "blk.0.attn_q_norm.weight"), nullptr);
  EXPECT_EQ(find(plan, "rope_freqs.weight"), nullptr);
  EXPECT_EQ(plan.size(), 3u + 28u * 12u);
}

TEST(Presets, Qwen3HasQkNormsOfHeadDim) {
  const auto plan = tensor_layout(find_preset("qwen3-0.6b"), 151936);
  EXPECT_EQ(find(plan, "output.weight"), nullptr);  // tied
  EXPECT_EQ(find(plan, "blk.27.attn_q_norm.weight")->shape, (std::vector<uint64_t>{128}));
  EXPECT_EQ(find(plan, "blk.27.attn_k_norm.weight")->shape, (std::vector<uint64_t>{128}));
  // head_dim 128 != 1024 / 16: q projects 1024 -> 16 x 128 = 2048.
  EXPECT_EQ(find(plan, "blk.0.attn_q.weight")->shape, (std::vector<uint64_t>{1024, 2048}));
  EXPECT_EQ(find(plan, "blk.0.attn_output.weight")->shape, (std::vector<uint64_t>{2048, 1024}));
  EXPECT_EQ(find(plan, "blk.0.attn_q.bias"), nullptr);
  EXPECT_EQ(plan.size(), 2u + 28u * 11u);
}

TEST(Presets, EveryPresetIsAValidShape) {
  for (const auto& p : presets()) {
    EXPECT_NO_THROW(apply_overrides(p, {})) << p.preset;
    EXPECT_EQ(p.heads % p.kv_heads, 0u) << p.preset;
  }
  EXPECT_THROW(find_preset("gpt-5"), std::invalid_argument);
}

TEST(Overrides, ReplacePresetValuesAndRecomputeHeadDim) {
  ShapeOverrides o;
  o.layers = 2;
  o.hidden = 512;
  o.heads = 8;
  o.kv_heads = 4;
  const ModelShape s = apply_overrides(find_preset("llama-3.2-1b"), o);
  EXPECT_EQ(s.layers, 2u);
  EXPECT_EQ(s.head_dim(), 64u);  // 512 / 8
  o.heads = 4;
  EXPECT_EQ(apply_overrides(find_preset("llama-3.2-1b"), o).head_dim(), 128u);
  o.head_dim = 32;
  EXPECT_EQ(apply_overrides(find_preset("llama-3.2-1b"), o).head_dim(), 32u);
}

TEST(Overrides, RejectInvalidGeometry) {
  ShapeOverrides o;
  o.kv_heads = 5;  // 32 heads are not a multiple of 5
  EXPECT_THROW(apply_overrides(find_preset("llama-3.2-1b"), o), std::invalid_argument);
  ShapeOverrides zero;
  zero.layers = 0;
  EXPECT_THROW(apply_overrides(find_preset("demo"), zero), std::invalid_argument);
}

}  // namespace
}  // namespace pensieve::synth
