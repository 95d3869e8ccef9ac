#pragma once
// Shared by the engine tests: the tiny fixture model (llama-tiny, f32, 4096-token context, 512-token vocab),
// its tokenizer, and helpers that submit requests and collect their events.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "backend/backend.h"
#include "test_device.h"
#include "engine/serving_engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::engine::testing {

struct TinyModel {
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
};

inline TinyModel& tiny_model() {
  static TinyModel t = [] {
    const auto path = std::filesystem::path(PENSIEVE_FIXTURES_DIR) / "models/llama-tiny/llama-tiny-f32.gguf";
    TinyModel m;
    m.backend = pensieve::testing::make_test_backend(2);
    m.model = model::Model::load(path, *m.backend);
    m.tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(m.model->file()));
    return m;
  }();
  return t;
}

inline std::unique_ptr<Engine> make_engine(EngineOptions o) {
  auto& t = tiny_model();
  return make_serving_engine(*t.model, *t.tokenizer, o);
}

struct Outcome {
  std::vector<std::vector<int32_t>> tokens;  // per choice
  std::vector<std::string> text;
  std::vector<FinishReason> finish;
  std::vector<std::string> matched_stop;
  std::vector<GenerationEvent> events;
  int finish_events = 0;
  Usage usage;
};

inline std::shared_ptr<RequestHandle> submit_ok(Engine& e, GenerationRequest r) {
  auto result = e.submit(std::move(r));
  if (auto* refused = std::get_if<SubmitRefused>(&result)) {
    ADD_FAILURE() << "refused: " << refused->message;
    return nullptr;
  }
  return std::get<std::shared_ptr<RequestHandle>>(result);
}

// Reads every event of the request until it ends (fails the test after 60 s).
inline Outcome collect(RequestHandle& h, int n_choices) {
  Outcome o;
  o.tokens.resize(static_cast<size_t>(n_choices));
  o.text.resize(static_cast<size_t>(n_choices));
  o.finish.resize(static_cast<size_t>(n_choices), FinishReason::Error);
  o.matched_stop.resize(static_cast<size_t>(n_choices));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::vector<GenerationEvent> batch;
  for (;;) {
    batch.clear();
    const bool more = h.drain(batch);
    for (auto& ev : batch) {
      const size_t c = static_cast<size_t>(ev.choice);
      o.tokens[c].insert(o.tokens[c].end(), ev.tokens.begin(), ev.tokens.end());
      o.text[c] += ev.text;
      if (ev.finish) {
        ++o.finish_events;
        o.finish[c] = *ev.finish;
        o.matched_stop[c] = ev.matched_stop;
      }
      o.events.push_back(std::move(ev));
    }
    if (!more) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "request did not end within 60 s";
      break;
    }
    h.wait(std::chrono::milliseconds(50));
  }
  o.usage = h.usage();
  return o;
}

// Stats once the engine thread has published the step that ended the last request.
inline EngineStats settled_stats(Engine& e) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  EngineStats st = e.stats();
  while ((st.running != 0 || st.waiting != 0 || st.kv_blocks_used != 0) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    st = e.stats();
  }
  return st;
}

inline std::vector<int32_t> random_prompt(std::mt19937& rng, int length) {
  std::uniform_int_distribution<int32_t> token(2, 511);  // 0 and 1 are BOS / EOS in the fixture vocabulary
  std::vector<int32_t> p(static_cast<size_t>(length));
  for (auto& t : p) t = token(rng);
  return p;
}

inline GenerationRequest greedy_request(std::vector<int32_t> prompt, int max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.stop.max_tokens = max_tokens;
  r.stop.ignore_eos = true;
  return r;
}

}  // namespace pensieve::engine::testing
