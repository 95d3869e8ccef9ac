#pragma once
// For the fuzzers of the API and HTTP paths: an engine that accepts every request and ends it at once with one
// event per choice (text, logprobs, finish), and the fixture model served through it.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "api/served_model.h"
#include "engine/serving_engine.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::fuzzing {

class EndedHandle final : public engine::RequestHandle {
 public:
  explicit EndedHandle(int n) : n_(n) {}
  bool drain(std::vector<engine::GenerationEvent>& out) override {
    if (drained_) return false;
    drained_ = true;
    for (int c = 0; c < n_; ++c) {
      engine::GenerationEvent e;
      e.choice = c;
      e.tokens = {1};
      e.text = "ok";
      e.logprobs = {{1, -0.5f}};
      e.top_logprobs = {{{1, -0.5f}, {2, -1.5f}}};
      e.finish = engine::FinishReason::Stop;
      out.push_back(std::move(e));
    }
    return true;
  }
  void wait(std::chrono::milliseconds) override {}
  void set_notify(std::function<void()>) override {}
  void cancel() override {}
  engine::Usage usage() const override { return {3, 0, n_}; }

 private:
  int n_;
  bool drained_ = false;
};

class StubEngine final : public engine::Engine {
 public:
  std::variant<std::shared_ptr<engine::RequestHandle>, engine::SubmitRefused> submit(engine::GenerationRequest r) override {
    return std::shared_ptr<engine::RequestHandle>(std::make_shared<EndedHandle>(r.n));
  }
  engine::EngineStats stats() const override { return {}; }
  int context_length() const override { return 4096; }
  int max_parallel() const override { return 4; }
  void stop_admitting() override {}
  void shutdown() override {}
};

struct Served {
  StubEngine engine;
  tokenizer::Tokenizer tokenizer;
  api::ServedModel model;
  explicit Served(const std::string& path)
      : tokenizer(tokenizer::Tokenizer::load(path)), model("m", engine, tokenizer) {}
};

inline Served& served() {
  const char* dir = std::getenv("PENSIEVE_FIXTURES_DIR");
  static Served s(std::string(dir ? dir : PENSIEVE_FIXTURES_DIR) + "/models/llama3-tiny/llama3-tiny-f32.gguf");
  return s;
}

}  // namespace pensieve::fuzzing
