#pragma once
// Hyper-parameters of a decoder-only transformer, read from GGUF metadata ("<arch>.block_count", ...).
#include <string>

#include "gguf/gguf_file.h"

namespace pensieve::model {

enum class Architecture { Llama, Qwen2, Qwen3 };

struct ModelConfig {
  Architecture arch = Architecture::Llama;
  std::string arch_name;
  int n_layers = 0;
  int dim = 0;           // embedding_length
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;      // attention.key_length when present (Qwen3), else dim / n_heads
  int ffn_dim = 0;
  int vocab = 0;         // rows of token_embd
  int n_rot = 0;         // rope.dimension_count, default head_dim
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  int context_length = 0;
  bool rope_neox = false;  // qwen2/qwen3 rotate halves; llama GGUFs carry q/k rows permuted for pairs (2i, 2i+1)
  bool qkv_bias = false;   // qwen2
  bool qk_norm = false;    // qwen3

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
};

// Throws std::runtime_error with one line for an unsupported architecture or missing/invalid metadata.
ModelConfig read_model_config(const gguf::GgufFile& file);

}  // namespace pensieve::model
