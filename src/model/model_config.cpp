#include "model/model_config.h"

#include <stdexcept>

namespace pensieve::model {

namespace {

int require_positive(const gguf::GgufFile& f, const std::string& key) {
  auto v = f.get_int(key);
  if (!v) throw std::runtime_error(f.name() + ": missing metadata key '" + key + "'");
  if (*v <= 0 || *v > (1 << 30)) throw std::runtime_error(f.name() + ": metadata '" + key + "' is out of range");
  return static_cast<int>(*v);
}

int optional_positive(const gguf::GgufFile& f, const std::string& key, int fallback) {
  auto v = f.get_int(key);
  if (!v) return fallback;
  if (*v <= 0 || *v > (1 << 30)) throw std::runtime_error(f.name() + ": metadata '" + key + "' is out of range");
  return static_cast<int>(*v);
}

}  // namespace

ModelConfig read_model_config(const gguf::GgufFile& f) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) throw std::runtime_error(f.name() + ": missing metadata key 'general.architecture'");
  c.arch_name = *arch;
  if (*arch == "llama") {
    c.arch = Architecture::Llama;
  } else if (*arch == "qwen2") {
    c.arch = Architecture::Qwen2;
    c.rope_neox = true;
    c.qkv_bias = true;
  } else if (*arch == "qwen3") {
    c.arch = Architecture::Qwen3;
    c.rope_neox = true;
    c.qk_norm = true;
  } else {
    throw std::runtime_error(f.name() + ": architecture '" + *arch +
                             "' is not supported (pensieve runs llama, qwen2 and qwen3)");
  }
  const std::string p = *arch + ".";
  c.n_layers = require_positive(f, p + "block_count");
  c.dim = require_positive(f, p + "embedding_length");
  c.n_heads = require_positive(f, p + "attention.head_count");
  c.n_kv_heads = optional_positive(f, p + "attention.head_count_kv", c.n_heads);
  c.ffn_dim = require_positive(f, p + "feed_forward_length");
  c.head_dim = optional_positive(f, p + "attention.key_length", c.dim / c.n_heads);
  const int value_dim = optional_positive(f, p + "attention.value_length", c.head_dim);
  if (value_dim != c.head_dim) throw std::runtime_error(f.name() + ": key and value head sizes differ");
  c.n_rot = optional_positive(f, p + "rope.dimension_count", c.head_dim);
  if (c.n_rot > c.head_dim || c.n_rot % 2 != 0) throw std::runtime_error(f.name() + ": invalid rope.dimension_count");
  c.context_length = optional_positive(f, p + "context_length", 4096);
  if (auto theta = f.get_float(p + "rope.freq_base")) c.rope_theta = static_cast<float>(*theta);
  if (auto eps = f.get_float(p + "attention.layer_norm_rms_epsilon")) c.rms_eps = static_cast<float>(*eps);
  if (c.n_heads % c.n_kv_heads != 0) {
    throw std::runtime_error(f.name() + ": head_count is not a multiple of head_count_kv");
  }
  if (auto scaling = f.get_string(p + "rope.scaling.type"); scaling && *scaling != "none" && *scaling != "llama3") {
    throw std::runtime_error(f.name() + ": rope scaling '" + *scaling + "' is not supported");
  }
  return c;
}

}  // namespace pensieve::model
