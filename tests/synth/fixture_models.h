#pragma once
// Builds a ModelShape from a fixture model's HF config.json, so that what synth lays out can be compared
// with the GGUF llama.cpp's converter wrote for the same config.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "synth/preset.h"

namespace pensieve::synth::testing {

inline std::filesystem::path fixtures() { return PENSIEVE_FIXTURES_DIR; }

inline nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) ADD_FAILURE() << "missing fixture " << path;
  return nlohmann::json::parse(in);
}

inline ModelShape shape_from_config(const std::string& model) {
  const nlohmann::json c = read_json_file(fixtures() / "models" / model / "config.json");
  const nlohmann::json rope = c.contains("rope_parameters") ? c["rope_parameters"] : c.value("rope_scaling", nlohmann::json::object());
  ModelShape s;
  s.preset = model;
  const std::string type = c["model_type"];
  s.arch = type == "qwen3" ? Arch::Qwen3 : type == "qwen2" ? Arch::Qwen2 : Arch::Llama;
  s.layers = c["num_hidden_layers"];
  s.hidden = c["hidden_size"];
  s.heads = c["num_attention_heads"];
  s.kv_heads = c["num_key_value_heads"];
  s.ffn = c["intermediate_size"];
  s.context = c["max_position_embeddings"];
  if (c.contains("head_dim")) s.explicit_head_dim = c["head_dim"].get<uint32_t>();
  s.rope_theta = c.contains("rope_theta") ? c["rope_theta"].get<double>() : rope["rope_theta"].get<double>();
  s.rms_norm_eps = c["rms_norm_eps"];
  s.tied_embeddings = c.value("tie_word_embeddings", false);
  if (rope.value("rope_type", "") == "llama3") {
    s.rope_scaling = Llama3RopeScaling{rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
                                       rope["original_max_position_embeddings"]};
  }
  s.vocab_size = c["vocab_size"];
  return s;
}

}  // namespace pensieve::synth::testing
