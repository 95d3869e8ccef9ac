// The engine thread survives a failure outside the model's forward pass, and a caller that does not drain
// pauses only its own request (issue 13).
#include <atomic>

#include "engine/event_channel.h"
#include "engine_fixture.h"

namespace pensieve::engine::testing {
namespace {

using namespace std::chrono_literals;

TEST(EngineFailures, AnExceptionOutsideForwardFailsTheRequestsAndTheEngineGoesOn) {
  EngineOptions o;
  o.parallel = 4;
  auto fail_next = std::make_shared<std::atomic<bool>>(false);
  o.fault_injector = [fail_next] {
    if (fail_next->exchange(false)) throw std::runtime_error("injected fault");
  };
  auto engine = make_engine(o);
  std::mt19937 rng(1);
  auto first = submit_ok(*engine, greedy_request(random_prompt(rng, 8), 200));
  ASSERT_TRUE(first);
  // Let it start, then fail a step.
  std::vector<GenerationEvent> seen;
  for (int i = 0; i < 2000 && seen.empty(); ++i) {
    first->drain(seen);
    std::this_thread::sleep_for(1ms);
  }
  fail_next->store(true);
  const Outcome failed = collect(*first, 1);
  EXPECT_EQ(failed.finish[0], FinishReason::Error);
  bool names_the_fault = false;
  for (const auto& e : failed.events) names_the_fault |= e.error.find("injected fault") != std::string::npos;
  EXPECT_TRUE(names_the_fault);
  // The engine still serves, and nothing of the failed request is held.
  auto second = submit_ok(*engine, greedy_request(random_prompt(rng, 8), 5));
  ASSERT_TRUE(second);
  const Outcome ok = collect(*second, 1);
  EXPECT_EQ(ok.finish[0], FinishReason::Length);
  EXPECT_EQ(ok.tokens[0].size(), 5u);
  EXPECT_EQ(settled_stats(*engine).running, 0);
}

TEST(EngineBackpressure, AnUndrainedRequestPausesAndTheOthersGoOn) {
  EngineOptions o;
  o.parallel = 4;
  o.max_queued_events = 3;
  auto engine = make_engine(o);
  std::mt19937 rng(2);
  auto slow = submit_ok(*engine, greedy_request(random_prompt(rng, 8), 100));
  ASSERT_TRUE(slow);
  // Another request runs to its end while the slow one is not drained.
  auto fast = submit_ok(*engine, greedy_request(random_prompt(rng, 8), 40));
  const Outcome done = collect(*fast, 1);
  EXPECT_EQ(done.tokens[0].size(), 40u);
  std::this_thread::sleep_for(50ms);
  EXPECT_LE(slow->usage().completion_tokens, 4) << "the engine kept decoding for a reader that does not read";
  // Drained, it resumes and finishes.
  const Outcome rest = collect(*slow, 1);
  EXPECT_EQ(rest.tokens[0].size(), 100u);
  EXPECT_EQ(rest.finish[0], FinishReason::Length);
}

}  // namespace
}  // namespace pensieve::engine::testing
