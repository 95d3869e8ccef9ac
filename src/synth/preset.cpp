#include "synth/preset.h"

#include <stdexcept>

namespace pensieve::synth {

std::string_view arch_name(Arch arch) {
  switch (arch) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
  }
  return "llama";
}

namespace {

// Values transcribed from each model's public config.json on Hugging Face.
std::vector<ModelShape> make_presets() {
  std::vector<ModelShape> all;

  ModelShape demo;
  demo.preset = "demo";
  demo.display_name = "Pensieve Demo (random weights)";
  demo.arch = Arch::Llama;
  demo.layers = 4, demo.hidden = 256, demo.heads = 8, demo.kv_heads = 4, demo.ffn = 768, demo.context = 8192;
  demo.rope_theta = 500000.0, demo.rms_norm_eps = 1e-5;
  demo.tied_embeddings = true;  // keeps the 128k-token demo small: one embedding matrix, not two
  demo.tokenizer_pre = "llama-bpe";
  all.push_back(demo);

  ModelShape llama1b;  // meta-llama/Llama-3.2-1B
  llama1b.preset = "llama-3.2-1b";
  llama1b.display_name = "Llama 3.2 1B";
  llama1b.arch = Arch::Llama;
  llama1b.layers = 16, llama1b.hidden = 2048, llama1b.heads = 32, llama1b.kv_heads = 8, llama1b.ffn = 8192;
  llama1b.context = 131072;
  llama1b.explicit_head_dim = 64;
  llama1b.rope_theta = 500000.0, llama1b.rms_norm_eps = 1e-5;
  llama1b.tied_embeddings = true;
  llama1b.rope_scaling = Llama3RopeScaling{32.0, 1.0, 4.0, 8192};
  llama1b.vocab_size = 128256;
  llama1b.tokenizer_pre = "llama-bpe";
  llama1b.bos_token_id = 128000, llama1b.eos_token_id = 128001;
  all.push_back(llama1b);

  ModelShape llama8b;  // meta-llama/Llama-3.1-8B (its config.json has no head_dim)
  llama8b.preset = "llama-3.1-8b";
  llama8b.display_name = "Llama 3.1 8B";
  llama8b.arch = Arch::Llama;
  llama8b.layers = 32, llama8b.hidden = 4096, llama8b.heads = 32, llama8b.kv_heads = 8, llama8b.ffn = 14336;
  llama8b.context = 131072;
  llama8b.rope_theta = 500000.0, llama8b.rms_norm_eps = 1e-5;
  llama8b.tied_embeddings = false;
  llama8b.rope_scaling = Llama3RopeScaling{8.0, 1.0, 4.0, 8192};
  llama8b.vocab_size = 128256;
  llama8b.tokenizer_pre = "llama-bpe";
  llama8b.bos_token_id = 128000, llama8b.eos_token_id = 128001;
  all.push_back(llama8b);

  ModelShape qwen05;  // Qwen/Qwen2.5-0.5B
  qwen05.preset = "qwen2.5-0.5b";
  qwen05.display_name = "Qwen2.5 0.5B";
  qwen05.arch = Arch::Qwen2;
  qwen05.layers = 24, qwen05.hidden = 896, qwen05.heads = 14, qwen05.kv_heads = 2, qwen05.ffn = 4864;
  qwen05.context = 32768;
  qwen05.rope_theta = 1000000.0, qwen05.rms_norm_eps = 1e-6;
  qwen05.tied_embeddings = true;
  qwen05.vocab_size = 151936;
  qwen05.tokenizer_pre = "qwen2";
  qwen05.bos_token_id = 151643, qwen05.eos_token_id = 151643;
  all.push_back(qwen05);

  ModelShape qwen7;  // Qwen/Qwen2.5-7B
  qwen7.preset = "qwen2.5-7b";
  qwen7.display_name = "Qwen2.5 7B";
  qwen7.arch = Arch::Qwen2;
  qwen7.layers = 28, qwen7.hidden = 3584, qwen7.heads = 28, qwen7.kv_heads = 4, qwen7.ffn = 18944;
  qwen7.context = 131072;
  qwen7.rope_theta = 1000000.0, qwen7.rms_norm_eps = 1e-6;
  qwen7.tied_embeddings = false;
  qwen7.vocab_size = 152064;
  qwen7.tokenizer_pre = "qwen2";
  qwen7.bos_token_id = 151643, qwen7.eos_token_id = 151643;
  all.push_back(qwen7);

  ModelShape qwen3small;  // Qwen/Qwen3-0.6B
  qwen3small.preset = "qwen3-0.6b";
  qwen3small.display_name = "Qwen3 0.6B";
  qwen3small.arch = Arch::Qwen3;
  qwen3small.layers = 28, qwen3small.hidden = 1024, qwen3small.heads = 16, qwen3small.kv_heads = 8;
  qwen3small.ffn = 3072, qwen3small.context = 40960;
  qwen3small.explicit_head_dim = 128;
  qwen3small.rope_theta = 1000000.0, qwen3small.rms_norm_eps = 1e-6;
  qwen3small.tied_embeddings = true;
  qwen3small.vocab_size = 151936;
  qwen3small.tokenizer_pre = "qwen2";
  qwen3small.bos_token_id = 151643, qwen3small.eos_token_id = 151645;
  all.push_back(qwen3small);

  ModelShape qwen3big;  // Qwen/Qwen3-8B
  qwen3big.preset = "qwen3-8b";
  qwen3big.display_name = "Qwen3 8B";
  qwen3big.arch = Arch::Qwen3;
  qwen3big.layers = 36, qwen3big.hidden = 4096, qwen3big.heads = 32, qwen3big.kv_heads = 8;
  qwen3big.ffn = 12288, qwen3big.context = 40960;
  qwen3big.explicit_head_dim = 128;
  qwen3big.rope_theta = 1000000.0, qwen3big.rms_norm_eps = 1e-6;
  qwen3big.tied_embeddings = false;
  qwen3big.vocab_size = 151936;
  qwen3big.tokenizer_pre = "qwen2";
  qwen3big.bos_token_id = 151643, qwen3big.eos_token_id = 151645;
  all.push_back(qwen3big);

  return all;
}

}  // namespace

const std::vector<ModelShape>& presets() {
  static const std::vector<ModelShape> all = make_presets();
  return all;
}

std::string preset_names() {
  std::string names;
  for (const auto& p : presets()) {
    if (!names.empty()) names += ", ";
    names += p.preset;
  }
  return names;
}

ModelShape find_preset(std::string_view name) {
  for (const auto& p : presets()) {
    if (p.preset == name) return p;
  }
  throw std::invalid_argument("unknown preset '" + std::string(name) + "' (known: " + preset_names() + ")");
}

ModelShape apply_overrides(ModelShape shape, const ShapeOverrides& o) {
  const bool geometry_changed = o.hidden || o.heads;
  if (o.layers) shape.layers = *o.layers;
  if (o.hidden) shape.hidden = *o.hidden;
  if (o.heads) shape.heads = *o.heads;
  if (o.kv_heads) shape.kv_heads = *o.kv_heads;
  if (o.ffn) shape.ffn = *o.ffn;
  if (o.context) shape.context = *o.context;
  if (o.head_dim) {
    shape.explicit_head_dim = *o.head_dim;
  } else if (geometry_changed && shape.arch != Arch::Qwen3) {
    shape.explicit_head_dim.reset();  // a preset's head_dim no longer fits the new geometry
  }

  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("invalid model shape: " + what);
  };
  require(shape.layers > 0, "--layers must be positive");
  require(shape.hidden > 0, "--hidden must be positive");
  require(shape.heads > 0, "--heads must be positive");
  require(shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0, "--heads must be a multiple of --kv-heads");
  require(shape.ffn > 0, "--ffn must be positive");
  require(shape.context > 0, "--context must be positive");
  if (shape.arch == Arch::Qwen3 && !shape.explicit_head_dim) shape.explicit_head_dim = shape.hidden / shape.heads;
  require(shape.explicit_head_dim || shape.hidden % shape.heads == 0,
          "--hidden must be a multiple of --heads (or give --head-dim)");
  require(shape.head_dim() > 0 && shape.head_dim() % 2 == 0, "head dimension must be even and positive");
  return shape;
}

}  // namespace pensieve::synth
