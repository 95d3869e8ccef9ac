// The serving engine on the tiny fixture model: outputs that do not depend on batch company, pool size or
// preemption; prefix caching that skips a shared prefix; stop conditions; refusals; cancellation.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "engine_fixture.h"
#include "model/generate.h"

namespace pensieve::engine::testing {
namespace {

TEST(ServingEngine, GreedyMatchesTheSingleSequenceReference) {
  auto& t = tiny_model();
  std::mt19937 rng(5);
  const auto prompt = random_prompt(rng, 37);
  model::GenerateOptions g;
  g.max_tokens = 20;
  g.kv_type = kv::KvType::F32;
  const auto expected = model::generate(*t.model, prompt, g).tokens;

  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  auto e = make_engine(o);
  auto h = submit_ok(*e, greedy_request(prompt, 20));
  const Outcome out = collect(*h, 1);
  EXPECT_EQ(out.tokens[0], expected);
  EXPECT_EQ(out.finish[0], FinishReason::Length);
  EXPECT_EQ(out.finish_events, 1);
  EXPECT_EQ(out.usage.prompt_tokens, 37);
  EXPECT_EQ(out.usage.completion_tokens, 20);
}

TEST(ServingEngine, TwentyConcurrentGreedyRequestsGiveWhatEachGivesAlone) {
  std::mt19937 rng(11);
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 20; ++i) requests.push_back(greedy_request(random_prompt(rng, 5 + 9 * i), 16));

  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.prefix_caching = false;
  o.parallel = 20;
  o.token_budget = 64;  // long prompts are prefilled in chunks beside the others' decodes
  std::vector<std::vector<int32_t>> alone;
  {
    auto e = make_engine(o);
    for (const auto& r : requests) alone.push_back(collect(*submit_ok(*e, r), 1).tokens[0]);
  }
  auto e = make_engine(o);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (const auto& r : requests) handles.push_back(submit_ok(*e, r));
  for (size_t i = 0; i < handles.size(); ++i) {
    EXPECT_EQ(collect(*handles[i], 1).tokens[0], alone[i]) << "request " << i;
  }
  EXPECT_EQ(settled_stats(*e).kv_blocks_used, 0);
}

TEST(ServingEngine, SeededSamplingIsTheSameWhateverTheBatchCompany) {
  std::mt19937 rng(12);
  GenerationRequest seeded;
  seeded.prompt = random_prompt(rng, 23);
  seeded.sampling.temperature = 1.0f;
  seeded.sampling.top_p = 0.95f;
  seeded.sampling.seed = 1234;
  seeded.stop.max_tokens = 24;
  seeded.stop.ignore_eos = true;
  seeded.n = 2;

  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.parallel = 8;
  auto e = make_engine(o);
  const Outcome alone = collect(*submit_ok(*e, seeded), 2);

  std::vector<std::shared_ptr<RequestHandle>> company;
  for (int i = 0; i < 6; ++i) {
    GenerationRequest other = seeded;
    other.prompt = random_prompt(rng, 10 + 7 * i);
    other.sampling.seed = 99 + i;
    other.n = 1;
    company.push_back(submit_ok(*e, other));
  }
  const Outcome crowded = collect(*submit_ok(*e, seeded), 2);
  for (auto& h : company) collect(*h, 1);

  EXPECT_EQ(crowded.tokens, alone.tokens);
  EXPECT_NE(alone.tokens[0], alone.tokens[1]) << "two choices of one seed should draw differently";
  GenerationRequest other_seed = seeded;
  other_seed.sampling.seed = 4321;
  EXPECT_NE(collect(*submit_ok(*e, other_seed), 2).tokens, alone.tokens);
}

TEST(ServingEngine, SecondRequestWithASharedPrefixPrefillsOnlyTheTail) {
  std::mt19937 rng(13);
  const auto prefix = random_prompt(rng, 2000);  // 125 full blocks
  auto first = prefix, second = prefix;
  const auto tail1 = random_prompt(rng, 9), tail2 = random_prompt(rng, 11);
  first.insert(first.end(), tail1.begin(), tail1.end());
  second.insert(second.end(), tail2.begin(), tail2.end());

  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.kv_blocks = 300;
  auto e = make_engine(o);
  const Outcome a = collect(*submit_ok(*e, greedy_request(first, 4)), 1);
  const auto before = e->stats();
  const Outcome b = collect(*submit_ok(*e, greedy_request(second, 4)), 1);
  const auto after = e->stats();
  EXPECT_EQ(a.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(b.usage.cached_prompt_tokens, 2000);
  EXPECT_EQ(after.prompt_tokens_cached - before.prompt_tokens_cached, 2000u);
  EXPECT_EQ(after.prefix_cache_hits - before.prefix_cache_hits, 125u);

  // The cached prefix gives the same continuation as computing everything.
  o.prefix_caching = false;
  auto plain = make_engine(o);
  EXPECT_EQ(collect(*submit_ok(*plain, greedy_request(second, 4)), 1).tokens[0], b.tokens[0]);
  EXPECT_EQ(plain->stats().prompt_tokens_cached, 0u);
}

TEST(ServingEngine, RequestsArrivingTogetherComputeTheirSharedPrefixOnce) {
  std::mt19937 rng(20);
  const auto prefix = random_prompt(rng, 256);
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.token_budget = 2048;  // room to admit all four in the first step, had they not waited for the prefix
  auto e = make_engine(o);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 4; ++i) {
    auto p = prefix;
    const auto own = random_prompt(rng, 20);
    p.insert(p.end(), own.begin(), own.end());
    handles.push_back(submit_ok(*e, greedy_request(p, 3)));
  }
  int cached = 0;
  for (auto& h : handles) cached += collect(*h, 1).usage.cached_prompt_tokens;
  EXPECT_EQ(cached, 3 * 256);
}

TEST(ServingEngine, AnIdenticalPromptStillComputesItsLastToken) {
  std::mt19937 rng(14);
  const auto prompt = random_prompt(rng, 64);  // exactly 4 blocks
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  auto e = make_engine(o);
  const Outcome a = collect(*submit_ok(*e, greedy_request(prompt, 5)), 1);
  const Outcome b = collect(*submit_ok(*e, greedy_request(prompt, 5)), 1);
  EXPECT_EQ(b.usage.cached_prompt_tokens, 48);  // the block holding the last token is recomputed
  EXPECT_EQ(a.tokens, b.tokens);
}

TEST(ServingEngine, PreemptionUnderASmallPoolLeavesEveryOutputUnchanged) {
  std::mt19937 rng(15);
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 8; ++i) requests.push_back(greedy_request(random_prompt(rng, 20 + 5 * i), 48));
  const auto run = [&](int kv_blocks, bool caching) {
    EngineOptions o;
    o.kv_type = kv::KvType::F32;
    o.parallel = 8;
    o.kv_blocks = kv_blocks;
    o.prefix_caching = caching;
    auto e = make_engine(o);
    std::vector<std::shared_ptr<RequestHandle>> handles;
    for (const auto& r : requests) handles.push_back(submit_ok(*e, r));
    std::vector<std::vector<int32_t>> out;
    for (auto& h : handles) {
      const Outcome oc = collect(*h, 1);
      EXPECT_EQ(oc.finish[0], FinishReason::Length);
      out.push_back(oc.tokens[0]);
    }
    const auto st = settled_stats(*e);
    EXPECT_EQ(st.kv_blocks_used, 0);
    return std::make_pair(out, st.preemptions);
  };
  const auto [reference, no_preemptions] = run(200, false);
  EXPECT_EQ(no_preemptions, 0u);
  for (bool caching : {false, true}) {
    const auto [squeezed, preemptions] = run(12, caching);  // 192 tokens for ~8 x 90 wanted
    EXPECT_GT(preemptions, 0u) << "the pool was meant to be too small";
    EXPECT_EQ(squeezed, reference) << "prefix caching " << caching;
  }
}

TEST(ServingEngine, StopStringSpanningTokensIsCutAndReported) {
  std::mt19937 rng(16);
  const auto prompt = random_prompt(rng, 12);
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  auto e = make_engine(o);
  const Outcome full = collect(*submit_ok(*e, greedy_request(prompt, 40)), 1);

  // A stop string made of the end of one token's text and the start of a later one's.
  std::string text;
  std::string stop;
  for (const auto& ev : full.events) {
    if (text.size() >= 6 && ev.text.size() >= 2 && stop.empty()) stop = text.substr(text.size() - 2) + ev.text.substr(0, 2);
    text += ev.text;
  }
  ASSERT_EQ(text, full.text[0]);
  ASSERT_FALSE(stop.empty()) << "the continuation had too little text: '" << text << "'";
  const size_t first = text.find(stop);

  GenerationRequest r = greedy_request(prompt, 40);
  r.stop.stop_strings = {stop};
  const Outcome cut = collect(*submit_ok(*e, r), 1);
  EXPECT_EQ(cut.finish[0], FinishReason::Stop);
  EXPECT_EQ(cut.matched_stop[0], stop);
  EXPECT_EQ(cut.text[0], text.substr(0, first));
  EXPECT_EQ(cut.finish_events, 1);
}

TEST(ServingEngine, StopTokenEndsTheChoice) {
  std::mt19937 rng(17);
  const auto prompt = random_prompt(rng, 12);
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  auto e = make_engine(o);
  const Outcome full = collect(*submit_ok(*e, greedy_request(prompt, 10)), 1);
  GenerationRequest r = greedy_request(prompt, 10);
  r.stop.stop_token_ids = {full.tokens[0][3]};
  const Outcome stopped = collect(*submit_ok(*e, r), 1);
  EXPECT_EQ(stopped.finish[0], FinishReason::Stop);
  const auto at = std::find(full.tokens[0].begin(), full.tokens[0].end(), full.tokens[0][3]);
  EXPECT_EQ(stopped.tokens[0], std::vector<int32_t>(full.tokens[0].begin(), at + 1));
}

TEST(ServingEngine, LogprobsAreConsistentWithTheGreedyChoice) {
  std::mt19937 rng(18);
  GenerationRequest r = greedy_request(random_prompt(rng, 15), 6);
  r.sampling.top_logprobs = 3;
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  auto e = make_engine(o);
  const Outcome out = collect(*submit_ok(*e, r), 1);
  int seen = 0;
  for (const auto& ev : out.events) {
    ASSERT_EQ(ev.logprobs.size(), ev.tokens.size());
    ASSERT_EQ(ev.top_logprobs.size(), ev.tokens.size());
    for (size_t i = 0; i < ev.tokens.size(); ++i) {
      ++seen;
      const auto& top = ev.top_logprobs[i];
      ASSERT_EQ(top.size(), 3u);
      EXPECT_EQ(top[0].token, ev.tokens[i]);  // greedy picks the most likely token
      EXPECT_FLOAT_EQ(top[0].logprob, ev.logprobs[i].logprob);
      EXPECT_GE(top[0].logprob, top[1].logprob);
      EXPECT_GE(top[1].logprob, top[2].logprob);
      EXPECT_LE(std::exp(top[0].logprob) + std::exp(top[1].logprob) + std::exp(top[2].logprob), 1.0 + 1e-5);
    }
  }
  EXPECT_EQ(seen, 6);
}

TEST(ServingEngine, ChoicesShareThePromptBlocks) {
  std::mt19937 rng(19);
  GenerationRequest r = greedy_request(random_prompt(rng, 100), 8);
  r.n = 3;
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  auto e = make_engine(o);
  const Outcome out = collect(*submit_ok(*e, r), 3);
  EXPECT_EQ(out.finish_events, 3);
  EXPECT_EQ(out.tokens[1], out.tokens[0]);
  EXPECT_EQ(out.tokens[2], out.tokens[0]);
  EXPECT_EQ(out.usage.completion_tokens, 24);
  // Choices 1 and 2 found choice 0's six full prompt blocks.
  EXPECT_EQ(e->stats().prefix_cache_hits, 12u);
}

TEST(ServingEngine, RefusesWhatItCannotServe) {
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.parallel = 1;
  o.queue_limit = 2;
  auto e = make_engine(o);
  EXPECT_EQ(e->context_length(), 4096);
  const auto why = [&](GenerationRequest r) {
    auto result = e->submit(std::move(r));
    return std::holds_alternative<SubmitRefused>(result) ? std::optional(std::get<SubmitRefused>(result).why)
                                                         : std::nullopt;
  };
  EXPECT_EQ(why(greedy_request(std::vector<int32_t>(4096, 5), 1)), SubmitRefused::Why::PromptTooLong);
  EXPECT_EQ(why(greedy_request({}, 1)), SubmitRefused::Why::InvalidRequest);
  EXPECT_EQ(why(greedy_request({600}, 1)), SubmitRefused::Why::InvalidRequest);

  // One long request runs; two more wait; the fourth finds the queue full.
  auto running = submit_ok(*e, greedy_request({5, 6, 7}, 4000));
  running->wait(std::chrono::seconds(10));
  std::vector<GenerationEvent> first;
  ASSERT_TRUE(running->drain(first));
  ASSERT_FALSE(first.empty());
  auto w1 = submit_ok(*e, greedy_request({5}, 3));
  auto w2 = submit_ok(*e, greedy_request({6}, 3));
  EXPECT_EQ(why(greedy_request({7}, 3)), SubmitRefused::Why::QueueFull);
  running->cancel();
  EXPECT_EQ(collect(*running, 1).finish[0], FinishReason::Cancelled);
  EXPECT_EQ(collect(*w1, 1).finish[0], FinishReason::Length);
  EXPECT_EQ(collect(*w2, 1).finish[0], FinishReason::Length);

  e->stop_admitting();
  EXPECT_EQ(why(greedy_request({7}, 3)), SubmitRefused::Why::ShuttingDown);
}

TEST(ServingEngine, MaxTokensIsClampedToTheContext) {
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.context_length = 40;
  auto e = make_engine(o);
  EXPECT_EQ(e->context_length(), 40);
  const Outcome out = collect(*submit_ok(*e, greedy_request(std::vector<int32_t>(30, 9), 100)), 1);
  EXPECT_EQ(out.tokens[0].size(), 10u);
  EXPECT_EQ(out.finish[0], FinishReason::Length);
}

TEST(ServingEngine, ShutdownCancelsWhatIsLeftAndNotifies) {
  EngineOptions o;
  o.kv_type = kv::KvType::F32;
  o.parallel = 1;
  auto e = make_engine(o);
  auto a = submit_ok(*e, greedy_request({5, 6}, 4000));
  auto b = submit_ok(*e, greedy_request({7, 8}, 4000));
  std::atomic<int> notified{0};
  b->set_notify([&] { ++notified; });
  e->shutdown();
  EXPECT_EQ(collect(*a, 1).finish[0], FinishReason::Cancelled);
  EXPECT_EQ(collect(*b, 1).finish[0], FinishReason::Cancelled);
  EXPECT_GT(notified.load(), 0);
}

// A one-token answer's only event is its finish: a caller that drains it before the request closes must still
// read the prompt's count (Anthropic's message_start says it). The soak caught 5 streams in 1000 saying 0: the
// engine thread was preempted between the event and the close. Here 16 spinning callers on few cores make that
// likely; it is a race, so the test can pass by luck before the fix, never fail after it.
TEST(ServingEngine, UsageIsSetBeforeTheFirstEventIsDelivered) {
  auto engine = make_engine({});
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 16; ++t) {
    callers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 20; ++i) {
        const auto prompt = random_prompt(rng, 5 + (t + i) % 9);
        auto h = submit_ok(*engine, greedy_request(prompt, 1));
        if (!h) return;
        std::vector<GenerationEvent> batch;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (batch.empty() && h->drain(batch) && std::chrono::steady_clock::now() < deadline) {
        }
        if (batch.empty() || h->usage().prompt_tokens != static_cast<int>(prompt.size())) ++wrong;
        collect(*h, 1);
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0) << "of 320 one-token requests";
}

}  // namespace
}  // namespace pensieve::engine::testing
