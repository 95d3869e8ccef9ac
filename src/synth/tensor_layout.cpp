#include "synth/tensor_layout.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace pensieve::synth {

std::vector<TensorPlan> tensor_layout(const ModelShape& s, uint64_t n_vocab) {
  const uint64_t hidden = s.hidden, ffn = s.ffn, hd = s.head_dim();
  const uint64_t q_dim = s.heads * hd, kv_dim = s.kv_heads * hd;

  std::vector<TensorPlan> checkpoint;
  auto add = [&](std::string name, std::string hf, std::vector<uint64_t> shape, TensorRole role, int layer) {
    checkpoint.push_back({std::move(name), std::move(hf), std::move(shape), role, layer});
  };

  if (!s.tied_embeddings) add("output.weight", "lm_head.weight", {hidden, n_vocab}, TensorRole::Matrix, -1);
  add("token_embd.weight", "model.embed_tokens.weight", {hidden, n_vocab}, TensorRole::Matrix, -1);
  add("output_norm.weight", "model.norm.weight", {hidden}, TensorRole::Norm, -1);
  for (uint32_t i = 0; i < s.layers; ++i) {
    const int layer = static_cast<int>(i);
    const std::string blk = "blk." + std::to_string(i) + ".";
    const std::string hf = "model.layers." + std::to_string(i) + ".";
    add(blk + "attn_norm.weight", hf + "input_layernorm.weight", {hidden}, TensorRole::Norm, layer);
    add(blk + "ffn_norm.weight", hf + "post_attention_layernorm.weight", {hidden}, TensorRole::Norm, layer);
    add(blk + "ffn_gate.weight", hf + "mlp.gate_proj.weight", {hidden, ffn}, TensorRole::Matrix, layer);
    add(blk + "ffn_up.weight", hf + "mlp.up_proj.weight", {hidden, ffn}, TensorRole::Matrix, layer);
    add(blk + "ffn_down.weight", hf + "mlp.down_proj.weight", {ffn, hidden}, TensorRole::Matrix, layer);
    add(blk + "attn_q.weight", hf + "self_attn.q_proj.weight", {hidden, q_dim}, TensorRole::Matrix, layer);
    add(blk + "attn_k.weight", hf + "self_attn.k_proj.weight", {hidden, kv_dim}, TensorRole::Matrix, layer);
    add(blk + "attn_v.weight", hf + "self_attn.v_proj.weight", {hidden, kv_dim}, TensorRole::Matrix, layer);
    add(blk + "attn_output.weight", hf + "self_attn.o_proj.weight", {q_dim, hidden}, TensorRole::Matrix, layer);
    if (s.has_qkv_bias()) {
      add(blk + "attn_q.bias", hf + "self_attn.q_proj.bias", {q_dim}, TensorRole::Bias, layer);
      add(blk + "attn_k.bias", hf + "self_attn.k_proj.bias", {kv_dim}, TensorRole::Bias, layer);
      add(blk + "attn_v.bias", hf + "self_attn.v_proj.bias", {kv_dim}, TensorRole::Bias, layer);
    }
    if (s.has_qk_norm()) {
      add(blk + "attn_q_norm.weight", hf + "self_attn.q_norm.weight", {hd}, TensorRole::Norm, layer);
      add(blk + "attn_k_norm.weight", hf + "self_attn.k_norm.weight", {hd}, TensorRole::Norm, layer);
    }
  }
  std::sort(checkpoint.begin(), checkpoint.end(),
            [](const TensorPlan& a, const TensorPlan& b) { return a.hf_name < b.hf_name; });

  std::vector<TensorPlan> plan;
  if (s.rope_scaling) plan.push_back({"rope_freqs.weight", "", {hd / 2}, TensorRole::RopeFreqs, -1});
  plan.insert(plan.end(), checkpoint.begin(), checkpoint.end());
  return plan;
}

std::vector<float> llama3_rope_factors(const ModelShape& s) {
  if (!s.rope_scaling) return {};
  const auto& r = *s.rope_scaling;
  const uint32_t dim = s.head_dim();
  const float base = static_cast<float>(s.rope_theta);
  const float old_context = static_cast<float>(r.original_context);
  const float low_freq_wavelen = old_context / static_cast<float>(r.low_freq_factor);
  const float high_freq_wavelen = old_context / static_cast<float>(r.high_freq_factor);
  const float factor = static_cast<float>(r.factor);
  const float low = static_cast<float>(r.low_freq_factor), high = static_cast<float>(r.high_freq_factor);

  std::vector<float> factors;
  factors.reserve(dim / 2);
  for (uint32_t i = 0; i < dim; i += 2) {
    // The converter's torch code works in float32 throughout; matching it keeps the tensor bit-identical.
    const float exponent = static_cast<float>(i) / static_cast<float>(dim);
    const float freq = 1.0f / std::pow(base, exponent);
    const float wavelen = static_cast<float>(2.0 * std::numbers::pi) / freq;
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(factor);
    } else {
      const float smooth = (old_context / wavelen - low) / (high - low);
      factors.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return factors;
}

}  // namespace pensieve::synth
