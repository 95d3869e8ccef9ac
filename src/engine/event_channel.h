#pragma once
// The RequestHandle the engine hands out: a mutex-guarded event queue the engine thread appends to and the
// caller drains, plus the cancel flag the engine thread polls every step.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/serving_engine.h"

namespace pensieve::engine {

// How a handle wakes the engine thread after cancel(); weakly held so a handle may outlive its engine.
class EngineWakeup {
 public:
  virtual ~EngineWakeup() = default;
  virtual void wake() = 0;
};

class EventChannel final : public RequestHandle {
 public:
  // backlog_limit: undelivered events at which backlogged() turns true (0: never).
  explicit EventChannel(std::weak_ptr<EngineWakeup> engine, size_t backlog_limit = 0)
      : engine_(std::move(engine)), backlog_limit_(backlog_limit) {}

  // Engine side.
  void push(GenerationEvent event);
  void close(const Usage& usage);  // after the last choice's finish event
  void set_usage(const Usage& usage);
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // The caller is behind: the engine holds this request's decodes until drain() wakes it.
  bool backlogged() const;

  // Caller side. drain() returns true while more events may come or when it appended some now; false once
  // the request has ended and there was nothing left to take.
  bool drain(std::vector<GenerationEvent>& out) override;
  void wait(std::chrono::milliseconds timeout) override;
  // The callback is invoked with the handle's lock held (it must not call into this handle); after
  // set_notify({}) returns it is not running and will not run again.
  void set_notify(std::function<void()> notify) override;
  void cancel() override;
  Usage usage() const override;

 private:
  void notify_locked(std::unique_lock<std::mutex>& lock);

  std::weak_ptr<EngineWakeup> engine_;
  const size_t backlog_limit_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<GenerationEvent> events_;
  bool ended_ = false;
  Usage usage_;
  std::function<void()> notify_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace pensieve::engine
