#include "registry/model_registry.h"

#include <algorithm>
#include <cstdio>
#include <future>
#include <stdexcept>

namespace pensieve::registry {

using Clock = std::chrono::steady_clock;
using api::ApiError;
using api::ErrorKind;

namespace {

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + " MiB"; }

int64_t unix_at(Clock::time_point t) {
  const auto system = std::chrono::system_clock::now() + (t - Clock::now());
  return std::chrono::duration_cast<std::chrono::seconds>(system.time_since_epoch()).count();
}

// A model someone else built and owns (of_resident).
class Borrowed : public LoadedModel {
 public:
  explicit Borrowed(const api::ServedModel& m) : model_(m) {}
  const api::ServedModel& served() const override { return model_; }

 private:
  const api::ServedModel& model_;
};

}  // namespace

Lease::Lease(ModelRegistry& registry, size_t entry, std::shared_ptr<LoadedModel> model)
    : registry_(registry), entry_(entry), model_(std::move(model)), served_(model_->served()),
      name_(served_.id()) {}

Lease::~Lease() {
  // Our reference goes first: should the release queue an unload, the last reference is the loader thread's.
  model_.reset();
  registry_.release(entry_);
}

ModelRegistry::ModelRegistry(RegistryOptions options) : options_(std::move(options)) {}

ModelRegistry::ModelRegistry(std::vector<ModelSpec> models, LoadFunction load, RegistryOptions options)
    : options_(std::move(options)), load_(std::move(load)) {
  for (ModelSpec& spec : models) {
    Entry e;
    e.spec = std::move(spec);
    entries_.push_back(std::move(e));
  }
  if (!options_.default_model.empty() && !find(options_.default_model)) {
    throw std::invalid_argument("--default-model '" + options_.default_model + "' is none of the served models");
  }
  loader_ = std::thread([this] { loader_loop(); });
}

std::unique_ptr<ModelRegistry> ModelRegistry::of_resident(std::vector<const api::ServedModel*> models) {
  std::unique_ptr<ModelRegistry> r(new ModelRegistry(RegistryOptions{}));
  for (const api::ServedModel* m : models) {
    Entry e;
    e.spec.name = m->id();
    e.spec.aliases.assign(m->names().begin() + 1, m->names().end());
    e.spec.facts.modified_unix = m->created();
    e.state = State::Loaded;
    e.resident_forever = true;
    e.model = std::make_shared<Borrowed>(*m);
    e.loaded_at = e.last_used = Clock::now();
    e.loads = 1;
    r->entries_.push_back(std::move(e));
  }
  r->loader_ = std::thread([p = r.get()] { p->loader_loop(); });
  return r;
}

ModelRegistry::~ModelRegistry() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    admitting_ = false;
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].state == State::Loaded && !entries_[i].resident_forever) {
        jobs_.push_back(Job{i, false, std::move(entries_[i].model)});
        entries_[i].state = State::Available;
      }
    }
  }
  wake_.notify_all();
  if (loader_.joinable()) loader_.join();
}

void ModelRegistry::log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::optional<size_t> ModelRegistry::find(const std::string& name) const {
  for (size_t i = 0; i < entries_.size(); ++i) {
    const ModelSpec& s = entries_[i].spec;
    if (s.name == name || std::find(s.aliases.begin(), s.aliases.end(), name) != s.aliases.end()) return i;
  }
  // "NAME:latest" is NAME, as Ollama clients write it.
  constexpr std::string_view kLatest = ":latest";
  if (name.size() > kLatest.size() && name.ends_with(kLatest)) return find(name.substr(0, name.size() - kLatest.size()));
  return std::nullopt;
}

bool ModelRegistry::knows(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return find(name).has_value();
}

uint64_t ModelRegistry::resident_bytes() const {
  std::lock_guard lock(mutex_);
  uint64_t used = 0;
  for (const Entry& e : entries_) {
    if (e.state != State::Available) used += e.spec.facts.memory_bytes;
  }
  return used;
}

std::shared_ptr<Lease> ModelRegistry::lease_locked(size_t i) {
  Entry& e = entries_[i];
  ++e.in_flight;
  ++e.requests;
  e.last_used = Clock::now();
  e.unload_at.reset();
  return std::shared_ptr<Lease>(new Lease(*this, i, e.model));
}

void ModelRegistry::unload_locked(size_t i) {
  Entry& e = entries_[i];
  jobs_.push_back(Job{i, false, std::move(e.model)});
  e.state = State::Available;
  e.unload_at.reset();
  ++e.unloads;
  wake_.notify_all();
}

bool ModelRegistry::make_room(uint64_t need, size_t for_entry, std::string& holders) {
  const uint64_t budget = options_.memory_budget;
  if (budget == 0) return true;
  uint64_t used = 0;
  for (const Entry& e : entries_) {
    if (e.state != State::Available) used += e.spec.facts.memory_bytes;
  }
  // Plan first, unload only when the plan frees enough: a refused load must not cost the idle models.
  std::vector<size_t> idle;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (i == for_entry || e.state != State::Loaded || e.resident_forever) continue;
    if (e.in_flight == 0) idle.push_back(i);
  }
  std::sort(idle.begin(), idle.end(), [&](size_t a, size_t b) { return entries_[a].last_used < entries_[b].last_used; });
  std::vector<size_t> victims;
  for (size_t i : idle) {
    if (used + need <= budget) break;
    used -= entries_[i].spec.facts.memory_bytes;
    victims.push_back(i);
  }
  if (used + need > budget) {
    for (const Entry& e : entries_) {
      if (e.state != State::Available && (e.in_flight > 0 || e.state == State::Loading)) {
        holders += (holders.empty() ? "" : ", ") + e.spec.name;
      }
    }
    return false;
  }
  for (size_t i : victims) {
    log("unloading '" + entries_[i].spec.name + "' (least recently used) to make room for '" +
        entries_[for_entry].spec.name + "'");
    unload_locked(i);
  }
  return true;
}

void ModelRegistry::acquire(const std::string& name, std::function<void(Acquired)> done) {
  std::unique_lock lock(mutex_);
  std::optional<size_t> found = find(name);
  if (!found && !options_.default_model.empty()) {
    found = find(options_.default_model);
    log("model '" + name + "' is not served: answering with the default model '" + options_.default_model + "'");
  }
  if (!found) {
    lock.unlock();
    done(Acquired{nullptr, ApiError(ErrorKind::NotFound,
                                    "model '" + name + "' does not exist; GET /v1/models lists the served ones",
                                    "model")});
    return;
  }
  const size_t i = *found;
  Entry& e = entries_[i];
  if (e.state == State::Loaded) {
    auto lease = lease_locked(i);
    lock.unlock();
    done(Acquired{std::move(lease), std::nullopt});
    return;
  }
  if (e.state == State::Loading) {
    e.waiters.push_back(std::move(done));
    return;
  }
  std::optional<ApiError> refusal;
  const uint64_t need = e.spec.facts.memory_bytes;
  std::string holders;
  if (!admitting_) {
    refusal = ApiError(ErrorKind::Unavailable, "the server is shutting down");
  } else if (options_.memory_budget && need > options_.memory_budget) {
    refusal = ApiError(ErrorKind::Unavailable, "model '" + e.spec.name + "' needs " + mib(need) +
                                                   ", more than the whole memory budget of " +
                                                   mib(options_.memory_budget) + " (--memory-budget)",
                       "model");
  } else if (!make_room(need, i, holders)) {
    refusal = ApiError(ErrorKind::Overloaded, "model '" + e.spec.name + "' (" + mib(need) +
                                                  ") does not fit in the memory budget of " +
                                                  mib(options_.memory_budget) + " beside the models in use (" +
                                                  holders + "); retry when their requests have finished",
                       "model");
  }
  if (refusal) {
    lock.unlock();
    done(Acquired{nullptr, std::move(refusal)});
    return;
  }
  e.state = State::Loading;
  e.waiters.push_back(std::move(done));
  jobs_.push_back(Job{i, true, nullptr});
  wake_.notify_all();
}

std::shared_ptr<Lease> ModelRegistry::acquire_now(const std::string& name) {
  std::promise<Acquired> answer;
  auto future = answer.get_future();
  acquire(name, [&answer](Acquired a) { answer.set_value(std::move(a)); });
  Acquired a = future.get();
  if (a.error) throw *a.error;
  return std::move(a.lease);
}

std::shared_ptr<Lease> ModelRegistry::preload(const std::string& name) {
  std::shared_ptr<Lease> lease = acquire_now(name);
  std::lock_guard lock(mutex_);
  --entries_[lease->entry_].requests;
  return lease;
}

void ModelRegistry::release(size_t i) {
  std::lock_guard lock(mutex_);
  Entry& e = entries_[i];
  --e.in_flight;
  e.last_used = Clock::now();
  if (e.in_flight > 0 || e.state != State::Loaded || e.resident_forever || !e.keep_alive) return;
  if (e.keep_alive->count() <= 0) {
    log("unloading '" + e.spec.name + "' (keep_alive 0)");
    unload_locked(i);
  } else {
    e.unload_at = Clock::now() + *e.keep_alive;
    wake_.notify_all();
  }
}

void ModelRegistry::set_keep_alive(const std::string& name, std::optional<std::chrono::milliseconds> keep_alive) {
  std::lock_guard lock(mutex_);
  const auto found = find(name);
  if (!found) return;
  Entry& e = entries_[*found];
  e.keep_alive = keep_alive;
  e.unload_at.reset();
  if (!keep_alive || e.state != State::Loaded || e.in_flight > 0 || e.resident_forever) return;
  if (keep_alive->count() <= 0) {
    log("unloading '" + e.spec.name + "' (keep_alive 0)");
    unload_locked(*found);
  } else {
    e.unload_at = Clock::now() + *keep_alive;
    wake_.notify_all();
  }
}

void ModelRegistry::loader_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    // Idle models whose keep_alive ran out.
    std::optional<Clock::time_point> next_expiry;
    const auto now = Clock::now();
    for (size_t i = 0; i < entries_.size(); ++i) {
      Entry& e = entries_[i];
      if (!e.unload_at) continue;
      if (*e.unload_at <= now && e.state == State::Loaded && e.in_flight == 0) {
        log("unloading '" + e.spec.name + "' (keep_alive expired)");
        unload_locked(i);
      } else if (e.unload_at) {
        next_expiry = next_expiry ? std::min(*next_expiry, *e.unload_at) : *e.unload_at;
      }
    }
    if (jobs_.empty()) {
      if (stopping_) return;
      if (next_expiry) wake_.wait_until(lock, *next_expiry);
      else wake_.wait(lock);
      continue;
    }
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    if (!job.load) {
      const std::string name = entries_[job.entry].spec.name;
      lock.unlock();
      job.model.reset();  // the engine shuts down, the weights and the KV pool are freed
      lock.lock();
      log("unloaded '" + name + "'");
      continue;
    }
    const ModelSpec spec = entries_[job.entry].spec;
    lock.unlock();
    log("loading '" + spec.name + "' from " + spec.path + " (" + mib(spec.facts.memory_bytes) + ") ...");
    const auto t0 = Clock::now();
    std::shared_ptr<LoadedModel> model;
    std::string failure;
    try {
      model = load_(spec);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    lock.lock();
    Entry& e = entries_[job.entry];
    std::vector<std::function<void(Acquired)>> waiters = std::move(e.waiters);
    e.waiters.clear();
    std::vector<Acquired> answers;
    if (model && !stopping_) {
      e.state = State::Loaded;
      e.model = std::move(model);
      e.loaded_at = Clock::now();
      e.last_load_seconds = seconds;
      ++e.loads;
      char line[160];
      std::snprintf(line, sizeof line, "loaded '%s' in %.2fs (%zu waiting)", spec.name.c_str(), seconds, waiters.size());
      log(line);
      for (size_t w = 0; w < waiters.size(); ++w) answers.push_back(Acquired{lease_locked(job.entry), std::nullopt});
    } else {
      e.state = State::Available;
      if (model) jobs_.push_back(Job{job.entry, false, std::move(model)});  // loaded while shutting down
      const std::string why = stopping_ ? "the server is shutting down" : "cannot load model '" + spec.name + "': " + failure;
      if (!stopping_) log(why);
      for (size_t w = 0; w < waiters.size(); ++w) answers.push_back(Acquired{nullptr, ApiError(ErrorKind::Unavailable, why)});
    }
    lock.unlock();
    for (size_t w = 0; w < waiters.size(); ++w) waiters[w](std::move(answers[w]));
    lock.lock();
  }
}

void ModelRegistry::stop_admitting() {
  std::lock_guard lock(mutex_);
  admitting_ = false;
  for (Entry& e : entries_) {
    if (e.state == State::Loaded) e.model->served().engine().stop_admitting();
  }
}

std::vector<api::ListedModel> ModelRegistry::listing() const {
  std::vector<api::ListedModel> out;
  for (const ModelStatus& s : status()) out.push_back(s.listing);
  return out;
}

std::vector<ModelStatus> ModelRegistry::status() const {
  std::lock_guard lock(mutex_);
  std::vector<ModelStatus> out;
  const auto now = Clock::now();
  for (const Entry& e : entries_) {
    ModelStatus s;
    s.listing.name = e.spec.name;
    s.listing.aliases = e.spec.aliases;
    s.listing.path = e.spec.path;
    s.listing.facts = e.spec.facts;
    s.listing.loaded = e.state == State::Loaded;
    s.listing.loading = e.state == State::Loading;
    if (s.listing.loaded) {
      s.listing.resident_bytes = e.spec.facts.memory_bytes;
      if (e.unload_at) s.listing.expires_unix = unix_at(*e.unload_at);
      const engine::Engine& eng = e.model->served().engine();
      s.engine = eng.stats();
      s.context_length = eng.context_length();
      s.max_parallel = eng.max_parallel();
      s.loaded_seconds = std::chrono::duration<double>(now - e.loaded_at).count();
    }
    s.in_flight = e.in_flight;
    s.requests = e.requests;
    s.loads = e.loads;
    s.unloads = e.unloads;
    s.last_load_seconds = e.last_load_seconds;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace pensieve::registry
