#pragma once
// Every model the server can answer for, loaded on the first request that names it and unloaded least recently
// used when loading another would pass the memory budget. A request holds a Lease on its model from the moment
// it is routed until its last byte is written; a model with a lease out is never unloaded. Loading and
// unloading run on the registry's own thread, never on the caller's (the HTTP event loop).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/api_error.h"
#include "api/model_listing.h"
#include "api/served_model.h"

namespace pensieve::registry {

// A model as loaded: whatever the loader built (backend, weights, tokenizer, engine) behind its ServedModel.
// Destroying it unloads the model (the engine shuts down first).
class LoadedModel {
 public:
  virtual ~LoadedModel() = default;
  virtual const api::ServedModel& served() const = 0;
};

struct ModelSpec {
  std::string name;                  // the id clients use
  std::vector<std::string> aliases;  // more names for it
  std::string path;                  // GGUF file
  api::ModelFacts facts;             // read before loading; facts.memory_bytes is what the budget counts
};

// Builds a model; throws (with one line) when it cannot. Called on the registry's thread.
using LoadFunction = std::function<std::unique_ptr<LoadedModel>(const ModelSpec&)>;

struct RegistryOptions {
  uint64_t memory_budget = 0;             // 0: no limit
  std::string default_model;              // answers for unknown names when set
  std::function<void(const std::string&)> log;  // one line per load, unload and default-model use
};

class ModelRegistry;

// Keeps its model resident; released on destruction (from any thread).
class Lease {
 public:
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  const api::ServedModel& served() const { return served_; }
  const std::string& name() const { return name_; }

 private:
  friend class ModelRegistry;
  Lease(ModelRegistry& registry, size_t entry, std::shared_ptr<LoadedModel> model);
  ModelRegistry& registry_;
  size_t entry_;
  std::shared_ptr<LoadedModel> model_;
  const api::ServedModel& served_;
  std::string name_;
};

struct Acquired {
  std::shared_ptr<Lease> lease;        // set on success
  std::optional<api::ApiError> error;  // else why not (NotFound, Overloaded: retry later, Unavailable)
};

// Per-model figures for /v1/status and /metrics.
struct ModelStatus {
  api::ListedModel listing;
  int in_flight = 0;
  uint64_t requests = 0;            // leases handed out, over every load
  uint64_t loads = 0;
  uint64_t unloads = 0;
  double last_load_seconds = 0;
  double loaded_seconds = 0;        // since the current load finished
  std::optional<engine::EngineStats> engine;  // while loaded
  int context_length = 0;
  int max_parallel = 0;
};

class ModelRegistry {
 public:
  ModelRegistry(std::vector<ModelSpec> models, LoadFunction load, RegistryOptions options);
  // Already-loaded models that stay resident for the registry's life (tests, embedders). They must outlive it.
  static std::unique_ptr<ModelRegistry> of_resident(std::vector<const api::ServedModel*> models);
  ~ModelRegistry();  // waits for a load under way, then unloads everything
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // Leases the model `name` (a name, an alias, or anything when a default model is set), loading it first when it
  // is not resident. `done` runs once, on this thread when the answer is known at once, else on the registry's.
  void acquire(const std::string& name, std::function<void(Acquired)> done);
  // The same, waiting here; throws the ApiError.
  std::shared_ptr<Lease> acquire_now(const std::string& name);
  // acquire_now for a load at startup: not counted as a request.
  std::shared_ptr<Lease> preload(const std::string& name);
  // Whether `name` is one the registry can answer for (the default model does not count).
  bool knows(const std::string& name) const;

  // How long `name` stays resident once idle (Ollama's keep_alive): zero unloads it as soon as its last request
  // ends (at once when idle), nullopt keeps it until the budget needs room. Unknown names are ignored.
  void set_keep_alive(const std::string& name, std::optional<std::chrono::milliseconds> keep_alive);

  std::vector<ModelStatus> status() const;
  std::vector<api::ListedModel> listing() const;
  // Every resident engine: used to stop admitting at shutdown (new loads are refused from then on).
  void stop_admitting();
  uint64_t memory_budget() const { return options_.memory_budget; }
  uint64_t resident_bytes() const;

 private:
  friend class Lease;
  enum class State { Available, Loading, Loaded };
  struct Entry {
    ModelSpec spec;
    State state = State::Available;
    bool resident_forever = false;
    std::shared_ptr<LoadedModel> model;
    const api::ServedModel* served = nullptr;  // for of_resident entries
    int in_flight = 0;
    std::chrono::steady_clock::time_point last_used;
    std::chrono::steady_clock::time_point loaded_at;
    std::optional<std::chrono::milliseconds> keep_alive;
    std::optional<std::chrono::steady_clock::time_point> unload_at;
    std::vector<std::function<void(Acquired)>> waiters;
    uint64_t requests = 0;
    uint64_t loads = 0;
    uint64_t unloads = 0;
    double last_load_seconds = 0;
  };
  struct Job {
    size_t entry;
    bool load;  // else unload `model`
    std::shared_ptr<LoadedModel> model;
  };

  ModelRegistry(RegistryOptions options);
  std::optional<size_t> find(const std::string& name) const;
  // Under the lock: makes room for `need` bytes by queueing unloads of idle models, least recently used first.
  bool make_room(uint64_t need, size_t for_entry, std::string& holders);
  void unload_locked(size_t i);
  void release(size_t entry);
  std::shared_ptr<Lease> lease_locked(size_t i);
  void loader_loop();
  void log(const std::string& line) const;

  RegistryOptions options_;
  LoadFunction load_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Entry> entries_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  bool admitting_ = true;
  std::thread loader_;  // last: started once the state above exists
};

}  // namespace pensieve::registry
