#include "model/generate.h"

#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>

namespace pensieve::model {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int blocks_for(size_t tokens) { return static_cast<int>(tokens / kv::kBlockTokens) + 1; }

int32_t sample(std::span<const float> logits, float temperature, std::mt19937_64& rng) {
  if (temperature <= 0.0f) return argmax(logits);
  const float top = logits[static_cast<size_t>(argmax(logits))];
  std::vector<double> weights(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) weights[i] = std::exp((logits[i] - top) / temperature);
  std::discrete_distribution<int32_t> pick(weights.begin(), weights.end());
  return pick(rng);
}

}  // namespace

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("argmax of no logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

std::vector<float> all_position_logits(Model& m, std::span<const int32_t> tokens, kv::KvType kv_type) {
  auto pool = m.make_kv_pool(kv_type, blocks_for(tokens.size()));
  kv::BlockTable table;
  table.reserve(pool, static_cast<int>(tokens.size()));
  Batch b;
  const int s = b.add_sequence(table.blocks());
  for (size_t i = 0; i < tokens.size(); ++i) b.add_token(tokens[i], static_cast<int32_t>(i), s, true);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m.config().vocab));
  m.forward(b, pool, logits);
  return logits;
}

Generation generate(Model& m, std::span<const int32_t> prompt, const GenerateOptions& o) {
  if (prompt.empty()) throw std::invalid_argument("generate needs at least one prompt token");
  const size_t vocab = static_cast<size_t>(m.config().vocab);
  const size_t total = prompt.size() + static_cast<size_t>(std::max(0, o.max_tokens));
  auto pool = m.make_kv_pool(o.kv_type, blocks_for(total));
  kv::BlockTable table;
  table.reserve(pool, static_cast<int>(total));
  std::mt19937_64 rng(o.seed);
  std::vector<float> logits(vocab);
  Generation g;
  Batch b;

  auto start = Clock::now();
  const size_t chunk = static_cast<size_t>(std::max(1, o.prefill_chunk));
  for (size_t begin = 0; begin < prompt.size(); begin += chunk) {
    const size_t end = std::min(prompt.size(), begin + chunk);
    b.clear();
    const int s = b.add_sequence(table.blocks());
    for (size_t i = begin; i < end; ++i) b.add_token(prompt[i], static_cast<int32_t>(i), s, i + 1 == prompt.size());
    m.forward(b, pool, end == prompt.size() ? std::span<float>(logits) : std::span<float>());
  }
  g.prefill_seconds = seconds_since(start);

  start = Clock::now();
  int32_t pos = static_cast<int32_t>(prompt.size());
  for (int i = 0; i < o.max_tokens; ++i) {
    const int32_t next = sample(logits, o.temperature, rng);
    g.tokens.push_back(next);
    if ((o.stop_token && next == *o.stop_token) || i + 1 == o.max_tokens) break;
    b.clear();
    const int s = b.add_sequence(table.blocks());
    b.add_token(next, pos++, s, true);
    m.forward(b, pool, logits);
  }
  g.decode_seconds = seconds_since(start);
  return g;
}

}  // namespace pensieve::model
