#pragma once
// Shared helpers for the model tests: the fixture models, their HF goldens, and ways to run prompts.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "model/model.h"
#include "test_device.h"

namespace pensieve::model::testing {

inline std::filesystem::path fixture_dir(const std::string& model) {
  return std::filesystem::path(PENSIEVE_FIXTURES_DIR) / "models" / model;
}

struct Fixture {
  std::string name;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> greedy;
  std::vector<std::vector<float>> logits;  // per prompt: [len][vocab] from HF transformers
  int vocab = 0;
};

inline Fixture load_fixture(const std::string& model) {
  const auto dir = fixture_dir(model);
  std::ifstream meta_in(dir / "meta.json");
  if (!meta_in) throw std::runtime_error("missing fixture " + (dir / "meta.json").string());
  const auto meta = nlohmann::json::parse(meta_in);
  Fixture f;
  f.name = model;
  f.vocab = meta.at("vocab_size").get<int>();
  f.prompts = meta.at("prompts").get<std::vector<std::vector<int32_t>>>();
  f.greedy = meta.at("greedy_24").get<std::vector<std::vector<int32_t>>>();
  for (size_t p = 0; p < f.prompts.size(); ++p) {
    const auto path = dir / ("logits_" + std::to_string(p) + ".f32");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("missing fixture " + path.string());
    std::vector<float> v(f.prompts[p].size() * static_cast<size_t>(f.vocab));
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    if (in.gcount() != static_cast<std::streamsize>(v.size() * sizeof(float))) {
      throw std::runtime_error("short golden file " + path.string());
    }
    f.logits.push_back(std::move(v));
  }
  return f;
}

inline backend::Backend& test_backend() {
  static std::unique_ptr<backend::Backend> be = pensieve::testing::make_test_backend(2);
  return *be;
}

// Runs `tokens` as one sequence from position 0 in one batch; returns logits for every position.
inline std::vector<float> prefill_all_logits(Model& m, const std::vector<int32_t>& tokens, kv::KvType type) {
  auto pool = m.make_kv_pool(type, static_cast<int>(tokens.size()) / kv::kBlockTokens + 2);
  kv::BlockTable table;
  if (!table.reserve(pool, static_cast<int>(tokens.size()))) throw std::runtime_error("KV pool too small");
  Batch b;
  const int s = b.add_sequence(table.blocks());
  for (size_t i = 0; i < tokens.size(); ++i) b.add_token(tokens[i], static_cast<int32_t>(i), s, true);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m.config().vocab));
  m.forward(b, pool, logits);
  return logits;
}

inline int argmax(const float* row, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = i;
  }
  return best;
}

// KL(p_ref || p_test) of the softmaxes of two logit rows, in nats.
inline double kl_divergence(const float* ref, const float* test, int n) {
  double mr = ref[0], mt = test[0];
  for (int i = 1; i < n; ++i) {
    mr = std::max(mr, static_cast<double>(ref[i]));
    mt = std::max(mt, static_cast<double>(test[i]));
  }
  double zr = 0, zt = 0;
  for (int i = 0; i < n; ++i) {
    zr += std::exp(ref[i] - mr);
    zt += std::exp(test[i] - mt);
  }
  double kl = 0;
  for (int i = 0; i < n; ++i) {
    const double lr = ref[i] - mr - std::log(zr);
    const double lt = test[i] - mt - std::log(zt);
    kl += std::exp(lr) * (lr - lt);
  }
  return kl;
}

// Greedy continuation with the KV cache: prefill the prompt, then one decode step per token.
inline std::vector<int32_t> greedy_incremental(Model& m, const std::vector<int32_t>& prompt, int n_new, kv::KvType type) {
  const int vocab = m.config().vocab;
  auto pool = m.make_kv_pool(type, static_cast<int>(prompt.size() + n_new) / kv::kBlockTokens + 2);
  kv::BlockTable table;
  if (!table.reserve(pool, static_cast<int>(prompt.size()) + n_new)) throw std::runtime_error("KV pool too small");
  std::vector<float> logits(static_cast<size_t>(vocab));
  Batch b;
  int s = b.add_sequence(table.blocks());
  for (size_t i = 0; i < prompt.size(); ++i) b.add_token(prompt[i], static_cast<int32_t>(i), s, i + 1 == prompt.size());
  m.forward(b, pool, logits);
  std::vector<int32_t> out;
  int32_t pos = static_cast<int32_t>(prompt.size());
  for (int step = 0; step < n_new; ++step) {
    const int32_t next = argmax(logits.data(), vocab);
    out.push_back(next);
    b.clear();
    s = b.add_sequence(table.blocks());
    b.add_token(next, pos++, s, true);
    m.forward(b, pool, logits);
  }
  return out;
}

}  // namespace pensieve::model::testing
