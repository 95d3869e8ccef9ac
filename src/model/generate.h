#pragma once
// Single-sequence conveniences over Model::forward, for the CLI and tests: logits at every position of a
// prompt, and a continuation (greedy or sampled) that decodes one token per step from the KV cache.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kv/kv_cache.h"
#include "model/model.h"

namespace pensieve::model {

// Logits [tokens.size()][vocab], the prompt run as one batch from position 0.
std::vector<float> all_position_logits(Model& m, std::span<const int32_t> tokens, kv::KvType kv_type);

struct GenerateOptions {
  int max_tokens = 16;
  float temperature = 0.0f;           // 0: argmax
  uint64_t seed = 0;
  std::optional<int32_t> stop_token;  // stop after emitting this id
  kv::KvType kv_type = kv::KvType::F16;
  int prefill_chunk = 512;            // prompt rows per forward call
};

struct Generation {
  std::vector<int32_t> tokens;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

Generation generate(Model& m, std::span<const int32_t> prompt, const GenerateOptions& options);

// Index of the largest logit (the first one on ties).
int32_t argmax(std::span<const float> logits);

}  // namespace pensieve::model
