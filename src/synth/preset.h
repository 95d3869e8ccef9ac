#pragma once
// Model shapes for `pensieve synth`: the hyper-parameters of real models (from their public HF config.json)
// plus a tiny `demo`, and the explicit flags that override them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::synth {

enum class Arch { Llama, Qwen2, Qwen3 };
std::string_view arch_name(Arch arch);  // the GGUF general.architecture value

// Llama 3.x "rope_type": "llama3" scaling; llama.cpp's converter turns it into a rope_freqs tensor.
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  uint32_t original_context = 8192;
};

struct ModelShape {
  std::string preset;        // preset name, or "custom"
  std::string display_name;  // general.name
  Arch arch = Arch::Llama;
  uint32_t layers = 0;
  uint32_t hidden = 0;
  uint32_t heads = 0;
  uint32_t kv_heads = 0;
  uint32_t ffn = 0;
  uint32_t context = 0;
  // Set when config.json names head_dim explicitly: the converter then writes attention.key_length and
  // attention.value_length; otherwise head_dim is hidden / heads and those keys are absent.
  std::optional<uint32_t> explicit_head_dim;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool tied_embeddings = false;
  std::optional<Llama3RopeScaling> rope_scaling;
  // config.json's vocab_size: a tokenizer of the same family is padded up to it, as the converter does.
  uint32_t vocab_size = 0;
  std::string tokenizer_pre;  // "llama-bpe" / "qwen2": the tokenizer family this model ships with
  // config.json's bos/eos ids: the converter falls back to them when tokenizer_config.json names none.
  std::optional<uint32_t> bos_token_id;
  std::optional<uint32_t> eos_token_id;

  uint32_t head_dim() const { return explicit_head_dim ? *explicit_head_dim : hidden / heads; }
  bool has_qkv_bias() const { return arch == Arch::Qwen2; }
  bool has_qk_norm() const { return arch == Arch::Qwen3; }
};

const std::vector<ModelShape>& presets();
std::string preset_names();  // "demo, llama-3.2-1b, ..." for help and errors
// Throws std::invalid_argument naming the known presets.
ModelShape find_preset(std::string_view name);

struct ShapeOverrides {
  std::optional<uint32_t> layers, hidden, heads, kv_heads, ffn, head_dim, context;
};

// Applies explicit flags; head_dim follows hidden/heads unless given or kept from an untouched preset.
// Throws std::invalid_argument when the result is not a valid attention geometry.
ModelShape apply_overrides(ModelShape shape, const ShapeOverrides& overrides);

}  // namespace pensieve::synth
