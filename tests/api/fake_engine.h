#pragma once
// An engine::Engine for tests of the API and HTTP layers: no model, just scripted text pieces emitted one per
// step from its own thread, honouring cancel, max_tokens and stop strings, and able to refuse requests.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/serving_engine.h"

namespace pensieve::testing {

using namespace pensieve::engine;

class FakeHandle final : public RequestHandle {
 public:
  explicit FakeHandle(GenerationRequest r) : request(std::move(r)) {}

  bool drain(std::vector<GenerationEvent>& out) override {
    if (drain_throws) throw std::runtime_error("scripted drain failure");
    std::lock_guard lock(mutex_);
    const bool took = !events_.empty();
    for (auto& e : events_) out.push_back(std::move(e));
    events_.clear();
    return took || !ended_;
  }
  void wait(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    ready_.wait_for(lock, timeout, [&] { return !events_.empty() || ended_; });
  }
  void set_notify(std::function<void()> notify) override {
    std::lock_guard lock(mutex_);
    notify_ = std::move(notify);
    if (notify_ && (!events_.empty() || ended_)) notify_();
  }
  void cancel() override { cancelled_ = true; }
  Usage usage() const override {
    std::lock_guard lock(mutex_);
    return usage_;
  }

  // Engine side. Notify is called under the lock so that set_notify(nullptr) is a barrier, as callers expect.
  void push(GenerationEvent e, bool last) {
    std::lock_guard lock(mutex_);
    usage_.completion_tokens += static_cast<int>(e.tokens.size());
    events_.push_back(std::move(e));
    if (last) ended_ = true;
    ready_.notify_all();
    if (notify_) notify_();
  }
  bool cancelled() const { return cancelled_; }

  const GenerationRequest request;
  std::vector<std::string> script;  // the pieces this request emits
  int live_choices = 0;  // engine thread only
  bool drain_throws = false;

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<GenerationEvent> events_;
  bool ended_ = false;
  Usage usage_;
  std::function<void()> notify_;
  std::atomic<bool> cancelled_{false};

  friend class FakeEngine;
  void set_prompt_usage(int n, int cached) {
    std::lock_guard lock(mutex_);
    usage_.prompt_tokens = n;
    usage_.cached_prompt_tokens = cached;
  }
};

class FakeEngine final : public Engine {
 public:
  // Each request emits these pieces in turn (token id = 100 + index), then finishes with "stop".
  std::vector<std::string> script = {"Hello", ",", " world", "!", " How", " are", " you", "?"};
  // Atomic: tests change it while the engine thread already sleeps by it (a data race ThreadSanitizer found).
  std::atomic<std::chrono::milliseconds> step{std::chrono::milliseconds(2)};
  std::optional<SubmitRefused::Why> refuse;  // set: every submit is refused with this
  std::optional<int> fail_after;             // set: a request finishes with an Error after this many pieces
  std::vector<int32_t> script_ids;           // token id of each piece (default 100 + index)
  int cached_prompt_tokens = 0;              // reported as read from the prefix cache (at most the prompt)
  // Set: the pieces for a request (e.g. a tool call on the first turn, an answer once a result came back).
  std::function<std::vector<std::string>(const GenerationRequest&)> script_for;
  bool drain_throws = false;                 // set: the handles of later requests throw from drain()

  FakeEngine() : thread_([this] { loop(); }) {}
  ~FakeEngine() override { shutdown(); }

  std::variant<std::shared_ptr<RequestHandle>, SubmitRefused> submit(GenerationRequest request) override {
    if (refuse) return SubmitRefused{*refuse, "refused by the fake engine"};
    std::lock_guard lock(mutex_);
    if (!admitting_) return SubmitRefused{SubmitRefused::Why::ShuttingDown, "stopping"};
    auto h = std::make_shared<FakeHandle>(std::move(request));
    h->script = script_for ? script_for(h->request) : script;
    h->drain_throws = drain_throws;
    const int prompt = static_cast<int>(h->request.prompt.size());
    h->set_prompt_usage(prompt, std::min(cached_prompt_tokens, prompt));
    h->live_choices = h->request.n;
    submitted_.push_back(h);
    for (int c = 0; c < h->request.n; ++c) running_.push_back({h, c, 0});
    return std::shared_ptr<RequestHandle>(h);
  }
  EngineStats stats() const override {
    std::lock_guard lock(mutex_);
    EngineStats s;
    s.running = static_cast<int>(running_.size());
    s.kv_blocks_total = 64;
    s.kv_blocks_used = static_cast<int>(running_.size());
    return s;
  }
  int context_length() const override { return 4096; }
  int max_parallel() const override { return 32; }
  void stop_admitting() override {
    std::lock_guard lock(mutex_);
    admitting_ = false;
  }
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      for (auto& r : running_) r.handle->cancel();
    }
    // One more step lets the loop emit the cancelled finishes.
    thread_.join();
  }

  std::vector<std::shared_ptr<FakeHandle>> submitted() const {
    std::lock_guard lock(mutex_);
    return submitted_;
  }
  std::shared_ptr<FakeHandle> last() const {
    std::lock_guard lock(mutex_);
    return submitted_.empty() ? nullptr : submitted_.back();
  }
  int running() const { return stats().running; }
  int cancelled_count() const { return cancelled_.load(); }

 private:
  struct Running {
    std::shared_ptr<FakeHandle> handle;
    int choice;
    int produced;
  };

  void loop() {
    for (;;) {
      std::this_thread::sleep_for(step.load());
      std::lock_guard lock(mutex_);
      std::vector<Running> still;
      for (Running& r : running_) {
        if (!step_one(r)) still.push_back(std::move(r));
      }
      running_ = std::move(still);
      if (stopped_ && running_.empty()) return;
    }
  }

  // Emits one event; true when this choice finished.
  bool step_one(Running& r) {
    FakeHandle& h = *r.handle;
    // Only evaluated when this event finishes its choice: the request ends with its last live choice.
    auto last_choice_ends = [&] { return --h.live_choices == 0; };
    GenerationEvent e;
    e.choice = r.choice;
    if (h.cancelled()) {
      e.finish = FinishReason::Cancelled;
      ++cancelled_;
      h.push(std::move(e), last_choice_ends());
      return true;
    }
    if (fail_after && r.produced >= *fail_after) {
      e.finish = FinishReason::Error;
      e.error = "scripted failure";
      h.push(std::move(e), last_choice_ends());
      return true;
    }
    const auto& script = h.script;
    if (r.produced >= static_cast<int>(script.size())) {
      e.finish = FinishReason::Stop;
      h.push(std::move(e), last_choice_ends());
      return true;
    }
    const std::string& piece = script[static_cast<size_t>(r.produced)];
    const auto& stops = h.request.stop.stop_strings;
    if (std::find(stops.begin(), stops.end(), piece) != stops.end()) {
      e.finish = FinishReason::Stop;
      e.matched_stop = piece;
      h.push(std::move(e), last_choice_ends());
      return true;
    }
    e.tokens = {static_cast<size_t>(r.produced) < script_ids.size() ? script_ids[static_cast<size_t>(r.produced)]
                                                                     : 100 + r.produced};
    e.text = piece;
    if (h.request.sampling.top_logprobs >= 0) {
      e.logprobs = {{e.tokens[0], -0.25f}};
      std::vector<TokenLogprob> top;
      for (int k = 0; k < h.request.sampling.top_logprobs; ++k) top.push_back({200 + k, -1.0f - k});
      e.top_logprobs = {top};
    }
    ++r.produced;
    if (r.produced >= h.request.stop.max_tokens) e.finish = FinishReason::Length;
    const bool done = e.finish.has_value();
    h.push(std::move(e), done && last_choice_ends());
    return done;
  }

  mutable std::mutex mutex_;
  std::vector<Running> running_;
  std::vector<std::shared_ptr<FakeHandle>> submitted_;
  bool admitting_ = true;
  bool stopped_ = false;
  std::atomic<int> cancelled_{0};
  std::thread thread_;
};

}  // namespace pensieve::testing
