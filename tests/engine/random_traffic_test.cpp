// 1000 random requests, some cancelled at random moments, through a pool small enough to force preemption:
// every choice ends with exactly one finish event, nothing stays queued, and no KV block is left referenced.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "engine_fixture.h"

namespace pensieve::engine::testing {
namespace {

TEST(ServingEngineTraffic, ThousandRandomRequestsWithCancellationsLeakNothing) {
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.parallel = 8;
  o.kv_blocks = 16;
  o.token_budget = 48;
  o.queue_limit = 2000;
  auto e = make_engine(o);

  std::mt19937 rng(2024);
  const auto shared = random_prompt(rng, 32);
  struct Live {
    std::shared_ptr<RequestHandle> handle;
    int n;
    int cancel_after_polls;  // -1: never
  };
  std::vector<Live> live;
  std::uniform_int_distribution<int> len(1, 30), gen(1, 8), coin(0, 3), polls(0, 5), choices(1, 2);
  for (int i = 0; i < 1000; ++i) {
    GenerationRequest r;
    r.prompt = random_prompt(rng, len(rng));
    if (coin(rng) == 0) r.prompt.insert(r.prompt.begin(), shared.begin(), shared.end());
    r.stop.max_tokens = coin(rng) == 0 ? 30 : gen(rng);
    r.sampling.temperature = coin(rng) == 0 ? 0.0f : 0.8f;
    r.sampling.seed = static_cast<uint64_t>(i);
    if (coin(rng) == 0) r.stop.stop_strings = {"e", "th"};
    r.n = choices(rng);
    const int cancel = coin(rng) == 0 ? polls(rng) : -1;
    live.push_back({submit_ok(*e, r), r.n, cancel});
    if (cancel == 0) live.back().handle->cancel();  // before the engine has even seen it, perhaps
  }

  std::vector<int> finishes(live.size(), 0);
  std::vector<int> polls_done(live.size(), 0);
  std::vector<bool> ended(live.size(), false);
  size_t remaining = live.size();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  std::vector<GenerationEvent> events;
  while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < live.size(); ++i) {
      if (ended[i]) continue;
      events.clear();
      const bool more = live[i].handle->drain(events);
      for (const auto& ev : events) finishes[i] += ev.finish ? 1 : 0;
      if (!more) {
        ended[i] = true;
        --remaining;
      } else if (++polls_done[i] == live[i].cancel_after_polls) {
        live[i].handle->cancel();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(remaining, 0u) << "requests stuck";
  for (size_t i = 0; i < live.size(); ++i) EXPECT_EQ(finishes[i], live[i].n) << "request " << i;

  const auto st = settled_stats(*e);
  std::printf("%llu steps, %llu preemptions, %llu of %llu prompt tokens cached\n",
              static_cast<unsigned long long>(st.steps), static_cast<unsigned long long>(st.preemptions),
              static_cast<unsigned long long>(st.prompt_tokens_cached),
              static_cast<unsigned long long>(st.prompt_tokens));
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
  EXPECT_GT(st.preemptions, 0u);
  EXPECT_GT(st.prefix_cache_hits, 0u);
}

}  // namespace
}  // namespace pensieve::engine::testing
