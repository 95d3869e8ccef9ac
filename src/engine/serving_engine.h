#pragma once
// The serving engine: one step loop (its own thread) per model running continuous batching over a paged KV
// pool with prefix caching. Callers submit requests from any thread and read events from a handle.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/request.h"

namespace pensieve::engine {

// Events of one request, written by the engine thread and read by the caller. Thread-safe.
class RequestHandle {
 public:
  virtual ~RequestHandle() = default;
  // Moves every event produced so far into `out` (appending); returns false once the request has ended and
  // every event was taken.
  virtual bool drain(std::vector<GenerationEvent>& out) = 0;
  // Blocks until an event is available, the request ended, or the timeout passes.
  virtual void wait(std::chrono::milliseconds timeout) = 0;
  // Called (on the engine thread, so it must be quick and must not call back into the engine) whenever new
  // events are ready. Async servers post a wake-up to their event loop here. Set before events can be missed:
  // the callback is invoked once at registration if events are already pending.
  virtual void set_notify(std::function<void()> notify) = 0;
  // Stops generation; the KV blocks are freed within one engine step. Idempotent.
  virtual void cancel() = 0;
  virtual Usage usage() const = 0;
};

struct SubmitRefused {
  enum class Why { QueueFull, PromptTooLong, InvalidRequest, ShuttingDown } why;
  std::string message;
};

struct EngineStats {
  int running = 0;                // sequences in the running set
  int waiting = 0;                // requests in the waiting queue
  int kv_blocks_total = 0;
  int kv_blocks_used = 0;
  uint64_t prefix_cache_queries = 0;  // full prompt blocks looked up
  uint64_t prefix_cache_hits = 0;
  uint64_t prompt_tokens = 0;         // total prompt tokens admitted
  uint64_t prompt_tokens_cached = 0;  // of those, served from the prefix cache
  uint64_t generated_tokens = 0;
  uint64_t steps = 0;
  uint64_t preemptions = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::variant<std::shared_ptr<RequestHandle>, SubmitRefused> submit(GenerationRequest request) = 0;
  virtual EngineStats stats() const = 0;
  virtual int context_length() const = 0;  // longest prompt + completion one sequence may have
  virtual int max_parallel() const = 0;
  // Stops admitting; running requests continue. Then `shutdown` cancels what is left and joins the thread.
  virtual void stop_admitting() = 0;
  virtual void shutdown() = 0;
};

}  // namespace pensieve::engine
