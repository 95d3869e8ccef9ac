// The Q4_K_M quantization mix, deciding the same way llama.cpp's llama-quantize does for dense models.
//
// The rule (llama.cpp, llama_tensor_get_type with ftype MOSTLY_Q4_K_M):
//   - Tensors with one dimension (norm weights, biases, rope_freqs) are not quantized: F32.
//   - output.weight gets Q6_K. A model without output.weight (tied embeddings) uses token_embd.weight as
//     its output projection, so that one gets Q6_K instead.
//   - attn_v.weight and ffn_down.weight get Q6_K in "layers that matter more": the first n/8 layers, the
//     last n/8 layers (layer >= 7n/8), and every third layer in between, counted from n/8 (those with
//     (layer - n/8) % 3 == 2); all divisions are integer divisions. Elsewhere they get Q4_K.
//   - Everything else (token_embd when the model has an output.weight, attn_q/k/output, ffn_gate/up): Q4_K.
// Differences, all toward more bits: llama.cpp gives a fused attn_qkv Q5_K and falls back to Q5_0 for rows
// that are not a multiple of 256; pensieve writes neither format, so those get Q6_K and Q8_0. The special
// cases llama.cpp has for Falcon, 70B-class and mixture-of-experts models are not reproduced.
#include <string_view>

#include "tensor/quantize.h"

namespace pensieve::tensor {

namespace {

using gguf::GgmlType;

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

bool looks_one_dimensional(std::string_view name) {
  return contains(name, "norm") || name.ends_with(".bias") || contains(name, "rope_freqs");
}

bool layer_gets_more_bits(int layer, int n_layers) {
  const int eighth = n_layers / 8;
  return layer < eighth || layer >= 7 * n_layers / 8 || (layer - eighth) % 3 == 2;
}

GgmlType choose_2d(std::string_view name, int layer, int n_layers, bool tied_embeddings) {
  if (name == "output.weight") return GgmlType::Q6_K;
  if (name == "token_embd.weight") return tied_embeddings ? GgmlType::Q6_K : GgmlType::Q4_K;
  if (contains(name, "attn_qkv.weight")) return GgmlType::Q6_K;
  if (contains(name, "attn_v.weight") || contains(name, "ffn_down")) {
    return layer >= 0 && layer_gets_more_bits(layer, n_layers) ? GgmlType::Q6_K : GgmlType::Q4_K;
  }
  return GgmlType::Q4_K;
}

}  // namespace

GgmlType q4_k_m_type_for(std::string_view tensor_name, int layer, int n_layers) {
  if (looks_one_dimensional(tensor_name)) return GgmlType::F32;
  return choose_2d(tensor_name, layer, n_layers, /*tied_embeddings=*/false);
}

GgmlType q4_k_m_type_for(std::string_view tensor_name, std::span<const uint64_t> shape, int layer, int n_layers,
                         bool tied_embeddings) {
  if (shape.size() < 2) return GgmlType::F32;
  const GgmlType chosen = choose_2d(tensor_name, layer, n_layers, tied_embeddings);
  if (shape[0] % 256 == 0) return chosen;
  return shape[0] % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F16;
}

}  // namespace pensieve::tensor
