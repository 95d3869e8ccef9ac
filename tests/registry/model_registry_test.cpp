// The registry's rules on scripted models: load on first use (once, however many wait), LRU unload under the
// budget, never unloading a model in use, refusals in the API's error kinds, keep_alive and the default model.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "api/fake_engine.h"
#include "api/fixture_tokenizer.h"
#include "registry/model_registry.h"

namespace pensieve::registry {
namespace {

using namespace std::chrono_literals;
using api::ErrorKind;

std::atomic<int> live_models{0};  // FakeLoaded instances alive now

class FakeLoaded : public LoadedModel {
 public:
  explicit FakeLoaded(const ModelSpec& spec) : served_(spec.name, engine_, testing::fixture_tokenizer()) {
    for (const std::string& a : spec.aliases) served_.add_alias(a);
    ++live_models;
  }
  ~FakeLoaded() override { --live_models; }
  const api::ServedModel& served() const override { return served_; }

 private:
  testing::FakeEngine engine_;
  api::ServedModel served_;
};

ModelSpec spec(const std::string& name, uint64_t bytes) {
  ModelSpec s;
  s.name = name;
  s.path = "/models/" + name + ".gguf";
  s.facts.memory_bytes = bytes;
  return s;
}

struct Counting {
  std::atomic<int> loads{0};
  std::chrono::milliseconds delay{0};
  LoadFunction loader() {
    return [this](const ModelSpec& s) -> std::unique_ptr<LoadedModel> {
      ++loads;
      std::this_thread::sleep_for(delay);
      if (s.name == "broken") throw std::runtime_error("bad file");
      return std::make_unique<FakeLoaded>(s);
    };
  }
};

bool loaded(const ModelRegistry& r, const std::string& name) {
  for (const ModelStatus& s : r.status()) {
    if (s.listing.name == name) return s.listing.loaded;
  }
  ADD_FAILURE() << "no model " << name;
  return false;
}

// Waits for the loader thread to finish queued unloads (they are asynchronous).
void settle(const ModelRegistry& r, int expected_live) {
  for (int i = 0; i < 200 && live_models.load() != expected_live; ++i) std::this_thread::sleep_for(5ms);
  (void)r;
}

ErrorKind refusal(ModelRegistry& r, const std::string& name) {
  try {
    r.acquire_now(name);
  } catch (const api::ApiError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "acquiring " << name << " succeeded";
  return ErrorKind::Internal;
}

TEST(ModelRegistry, LoadsOnFirstRequestOnlyOnceForConcurrentWaiters) {
  Counting c;
  c.delay = 100ms;
  ModelRegistry r({spec("a", 10), spec("b", 10)}, c.loader(), {});
  EXPECT_FALSE(loaded(r, "a"));
  std::vector<std::future<std::shared_ptr<Lease>>> waiting;
  for (int i = 0; i < 8; ++i) waiting.push_back(std::async(std::launch::async, [&] { return r.acquire_now("a"); }));
  for (auto& f : waiting) EXPECT_EQ(f.get()->served().id(), "a");
  EXPECT_EQ(c.loads.load(), 1);
  EXPECT_TRUE(loaded(r, "a"));
  EXPECT_FALSE(loaded(r, "b"));
}

TEST(ModelRegistry, AliasesReachTheModelAndUnknownNamesAre404) {
  Counting c;
  ModelSpec a = spec("a", 10);
  a.aliases = {"gpt-4o"};
  ModelRegistry r({a}, c.loader(), {});
  EXPECT_EQ(r.acquire_now("gpt-4o")->served().id(), "a");
  EXPECT_EQ(refusal(r, "nope"), ErrorKind::NotFound);
}

TEST(ModelRegistry, DefaultModelAnswersUnknownNamesAndSaysSo) {
  Counting c;
  std::vector<std::string> lines;
  RegistryOptions o;
  o.default_model = "b";
  o.log = [&](const std::string& l) { lines.push_back(l); };
  ModelRegistry r({spec("a", 10), spec("b", 10)}, c.loader(), o);
  EXPECT_EQ(r.acquire_now("claude-3-opus")->served().id(), "b");
  bool said = false;
  for (const std::string& l : lines) said |= l.find("claude-3-opus") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(ModelRegistry, ThirdModelUnloadsTheLeastRecentlyUsed) {
  Counting c;
  RegistryOptions o;
  o.memory_budget = 25;  // two of the three fit
  ModelRegistry r({spec("a", 10), spec("b", 10), spec("c", 10)}, c.loader(), o);
  r.acquire_now("a");
  r.acquire_now("b");
  r.acquire_now("a");  // a is now more recent than b
  r.acquire_now("c");
  settle(r, 2);
  EXPECT_TRUE(loaded(r, "a"));
  EXPECT_FALSE(loaded(r, "b"));
  EXPECT_TRUE(loaded(r, "c"));
  EXPECT_EQ(live_models.load(), 2);
  EXPECT_LE(r.resident_bytes(), 25u);
}

TEST(ModelRegistry, ModelInUseIsNeverUnloadedAndTheNewcomerMayRetry) {
  Counting c;
  RegistryOptions o;
  o.memory_budget = 25;
  ModelRegistry r({spec("a", 10), spec("b", 10), spec("c", 10)}, c.loader(), o);
  auto a = r.acquire_now("a");
  auto b = r.acquire_now("b");
  EXPECT_EQ(refusal(r, "c"), ErrorKind::Overloaded);  // 429 with Retry-After: waiting helps
  EXPECT_TRUE(loaded(r, "a"));
  EXPECT_TRUE(loaded(r, "b"));
  EXPECT_EQ(a->served().id(), "a");  // still usable
  b.reset();                          // b's request ends: b may go
  EXPECT_EQ(r.acquire_now("c")->served().id(), "c");
  EXPECT_TRUE(loaded(r, "a"));
  EXPECT_FALSE(loaded(r, "b"));
}

TEST(ModelRegistry, ModelLargerThanTheBudgetIsRefusedWithoutUnloadingOthers) {
  Counting c;
  RegistryOptions o;
  o.memory_budget = 25;
  ModelRegistry r({spec("a", 10), spec("huge", 30)}, c.loader(), o);
  r.acquire_now("a");
  EXPECT_EQ(refusal(r, "huge"), ErrorKind::Unavailable);
  EXPECT_TRUE(loaded(r, "a"));
}

TEST(ModelRegistry, FailedLoadIsAnErrorAndTheModelStaysAvailable) {
  Counting c;
  ModelRegistry r({spec("broken", 10)}, c.loader(), {});
  EXPECT_EQ(refusal(r, "broken"), ErrorKind::Unavailable);
  EXPECT_EQ(refusal(r, "broken"), ErrorKind::Unavailable);  // tried again, not stuck "loading"
  EXPECT_EQ(c.loads.load(), 2);
}

TEST(ModelRegistry, KeepAliveZeroUnloadsOnceTheLastRequestEnds) {
  Counting c;
  const int before = live_models.load();
  ModelRegistry r({spec("a", 10)}, c.loader(), {});
  auto lease = r.acquire_now("a");
  r.set_keep_alive("a", 0ms);
  EXPECT_TRUE(loaded(r, "a"));  // in use
  lease.reset();
  settle(r, before);
  EXPECT_FALSE(loaded(r, "a"));
  EXPECT_EQ(live_models.load(), before);
}

TEST(ModelRegistry, KeepAliveDurationUnloadsWhenIdleThatLong) {
  Counting c;
  ModelRegistry r({spec("a", 10)}, c.loader(), {});
  r.acquire_now("a");
  r.set_keep_alive("a", 100ms);
  EXPECT_TRUE(loaded(r, "a"));
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(loaded(r, "a"));
}

TEST(ModelRegistry, FiftyLoadUnloadCyclesLeaveNothingBehind) {
  Counting c;
  RegistryOptions o;
  o.memory_budget = 15;  // one at a time
  const int before = live_models.load();
  {
    ModelRegistry r({spec("a", 10), spec("b", 10)}, c.loader(), o);
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(r.acquire_now(i % 2 ? "b" : "a")->served().id(), i % 2 ? "b" : "a");
    }
    settle(r, before + 1);
    EXPECT_EQ(live_models.load(), before + 1);
    EXPECT_EQ(c.loads.load(), 50);
  }
  EXPECT_EQ(live_models.load(), before);  // the destructor unloads the last one
}

TEST(ModelRegistry, StatusCountsRequestsLoadsAndUnloads) {
  Counting c;
  RegistryOptions o;
  o.memory_budget = 15;
  ModelRegistry r({spec("a", 10), spec("b", 10)}, c.loader(), o);
  r.acquire_now("a");
  r.acquire_now("a");
  r.acquire_now("b");
  settle(r, live_models.load());
  const auto s = r.status();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].requests, 2u);
  EXPECT_EQ(s[0].loads, 1u);
  EXPECT_EQ(s[0].unloads, 1u);
  EXPECT_FALSE(s[0].engine.has_value());
  EXPECT_TRUE(s[1].engine.has_value());
  EXPECT_EQ(s[1].listing.resident_bytes, 10u);
}

}  // namespace
}  // namespace pensieve::registry
