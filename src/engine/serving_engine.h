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
#include "kv/kv_cache.h"

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
  // Where the model runs: "cpu-avx2", "cuda:0 NVIDIA H200", ...; the memory its backend holds (weights, KV
  // pool, scratch) and, for a GPU, the card's total and free memory.
  std::string device;
  uint64_t device_memory_allocated = 0;
  uint64_t device_memory_total = 0;
  uint64_t device_memory_free = 0;
  // Steps recorded as one launchable unit (CUDA graphs), and steps launched from a recording (0 on the CPU).
  uint64_t recorded_steps = 0;
  uint64_t replayed_steps = 0;
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

// ---- Construction of the continuous-batching engine (added with its implementation) ----
namespace pensieve::model {
class Model;
}
namespace pensieve::tokenizer {
class Tokenizer;
}

namespace pensieve::engine {

struct EngineOptions {
  int parallel = 8;              // sequences in the running set at most (each choice of a request counts)
  int kv_blocks = 0;             // KV pool size in blocks of 16 tokens; 0: from kv_bytes
  uint64_t kv_bytes = 0;         // KV pool size in bytes when kv_blocks is 0; both 0: parallel x context
  kv::KvType kv_type = kv::KvType::F16;
  int token_budget = 512;        // rows per forward step: decodes first, then prefill chunks
  int queue_limit = 256;         // waiting requests before submit answers QueueFull
  // Backpressure: a request whose caller has this many undelivered events per choice is not decoded until the
  // caller drains (a slow reader pauses its own sequences, not the engine). 0: no bound.
  int max_queued_events = 64;
  // Tests only: called on the engine thread before every step; an exception it throws is how the tests check
  // that a failure outside the model ends the requests cleanly and leaves the engine serving.
  std::function<void()> fault_injector = {};
  int context_length = 0;        // 0: the model's; capped by the pool's capacity
  bool prefix_caching = true;
};

// Starts the engine thread. The model and tokenizer must outlive the engine; nothing else may run the model
// meanwhile. A prompt of context_length() tokens or more is refused (PromptTooLong); max_tokens is clamped to
// what the context leaves and such a choice ends with FinishReason::Length.
std::unique_ptr<Engine> make_serving_engine(model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                            const EngineOptions& options);

}  // namespace pensieve::engine
