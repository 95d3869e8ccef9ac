// Sampler transforms, each checked against values worked out by hand from its definition, and the draw
// checked against the distribution it should follow.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/sampler.h"

namespace pensieve::engine {
namespace {

std::vector<float> logs_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

// Frequencies of each token over `draws` samples from fresh copies of `logits`.
std::vector<double> frequencies(const std::vector<float>& logits, const SamplingParams& p, int draws, uint64_t seed) {
  Sampler s(static_cast<int>(logits.size()));
  SequenceRng rng(seed);
  std::vector<double> f(logits.size(), 0.0);
  const std::vector<int32_t> history{0};
  for (int i = 0; i < draws; ++i) {
    auto l = logits;
    f[static_cast<size_t>(s.sample(l, p, history, 1, rng))] += 1.0 / draws;
  }
  return f;
}

// The head of a row decides exactly the requests it is used for: the same token, logprob and alternatives as
// the whole row gives, on a row with ties at the top.
TEST(Sampler, TheHeadOfARowGivesWhatTheWholeRowGivesForGreedyRequests) {
  std::vector<float> row(1000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<float>((i * 7919) % 101) * 0.03f;
  row[400] = row[900] = 5.0f;  // a tie for the best: the lower id wins
  backend::TopLogits head{};
  backend::compute_top_logits(row, head);
  SamplingParams p;
  p.temperature = 0;
  p.top_logprobs = 5;
  ASSERT_TRUE(Sampler::head_suffices(p, false));
  Sampler s(static_cast<int>(row.size()));
  SequenceRng rng(1);
  auto copy = row;
  const int32_t token = s.sample(copy, p, {}, 0, rng);
  EXPECT_EQ(token, 400);
  EXPECT_EQ(Sampler::sample_from_head(head), token);
  EXPECT_NEAR(Sampler::logprob_from_head(head, token), s.logprob_of(row, token), 1e-5);
  std::vector<TokenLogprob> want, got;
  s.top_logprobs(row, 5, want);
  Sampler::top_logprobs_from_head(head, 5, got);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].token, want[i].token);
    EXPECT_NEAR(got[i].logprob, want[i].logprob, 1e-5);
  }
}

// Anything that can lift a token from outside the head, or needs the whole distribution, reads the row.
TEST(Sampler, TheHeadIsNotEnoughForSamplingPenaltiesBiasGrammarOrManyLogprobs) {
  SamplingParams greedy;
  greedy.temperature = 0;
  EXPECT_TRUE(Sampler::head_suffices(greedy, false));
  EXPECT_FALSE(Sampler::head_suffices(greedy, true));  // a grammar
  auto p = greedy;
  p.temperature = 0.7f;
  EXPECT_FALSE(Sampler::head_suffices(p, false));
  p = greedy;
  p.repetition_penalty = 1.1f;
  EXPECT_FALSE(Sampler::head_suffices(p, false));
  p.repetition_last_n = 0;  // a penalty over no tokens is no penalty
  EXPECT_TRUE(Sampler::head_suffices(p, false));
  p = greedy;
  p.presence_penalty = 0.5f;
  EXPECT_FALSE(Sampler::head_suffices(p, false));
  p = greedy;
  p.logit_bias = {{3, 10.0f}};
  EXPECT_FALSE(Sampler::head_suffices(p, false));
  p = greedy;
  p.top_logprobs = backend::kTopLogits + 1;
  EXPECT_FALSE(Sampler::head_suffices(p, false));
}

TEST(Sampler, GreedyTakesTheLargestLogitAndTheFirstOnTies) {
  Sampler s(4);
  SequenceRng rng(1);
  SamplingParams p;
  p.temperature = 0;
  std::vector<float> l{0.5f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(s.sample(l, p, {}, 0, rng), 1);
}

TEST(Sampler, LogitBiasIsAdded) {
  Sampler s(3);
  SequenceRng rng(1);
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{2, 5.0f}, {0, -1.0f}};
  std::vector<float> l{1.0f, 3.0f, -1.0f};
  EXPECT_EQ(s.sample(l, p, {}, 0, rng), 2);
  EXPECT_FLOAT_EQ(l[0], 0.0f);
  EXPECT_FLOAT_EQ(l[2], 4.0f);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeOncePerTokenInTheWindow) {
  Sampler s(5);
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.repetition_last_n = 3;
  std::vector<float> l{4.0f, -3.0f, 1.0f, 6.0f, 8.0f};
  // History 4, 0, 1, 1: the window (last 3) is 0, 1, 1; token 4 lies outside it.
  const std::vector<int32_t> history{4, 0, 1, 1};
  s.apply_penalties(l, p, history, 2);
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  EXPECT_FLOAT_EQ(l[1], -6.0f);  // once, though it appears twice
  EXPECT_FLOAT_EQ(l[2], 1.0f);
  EXPECT_FLOAT_EQ(l[3], 6.0f);
  EXPECT_FLOAT_EQ(l[4], 8.0f);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountOnlyGeneratedTokens) {
  Sampler s(4);
  SamplingParams p;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<float> l{1.0f, 1.0f, 1.0f, 1.0f};
  // Prompt: 3, 3 (not counted). Output: 0, 2, 0, 0.
  const std::vector<int32_t> history{3, 3, 0, 2, 0, 0};
  s.apply_penalties(l, p, history, 2);
  EXPECT_FLOAT_EQ(l[0], 1.0f - 0.5f - 3 * 0.25f);
  EXPECT_FLOAT_EQ(l[1], 1.0f);
  EXPECT_FLOAT_EQ(l[2], 1.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(l[3], 1.0f);
  // The scratch counts are clean again: a second call with no history changes nothing.
  std::vector<float> m{1.0f, 1.0f, 1.0f, 1.0f};
  s.apply_penalties(m, p, std::vector<int32_t>{3}, 1);
  EXPECT_EQ(m, (std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f}));
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  SamplingParams p;
  p.temperature = 1.0f;
  const auto f = frequencies(logs_of({0.1, 0.2, 0.7}), p, 20000, 7);
  EXPECT_NEAR(f[0], 0.1, 0.01);
  EXPECT_NEAR(f[1], 0.2, 0.015);
  EXPECT_NEAR(f[2], 0.7, 0.015);
}

TEST(Sampler, TemperatureSharpensAsThePowerOfItsInverse) {
  SamplingParams p;
  p.temperature = 0.5f;  // p_i proportional to p_i^2: 1/5 and 4/5
  const auto f = frequencies(logs_of({1.0 / 3, 2.0 / 3}), p, 20000, 8);
  EXPECT_NEAR(f[0], 0.2, 0.012);
  EXPECT_NEAR(f[1], 0.8, 0.012);
}

TEST(Sampler, TopKKeepsTheKBest) {
  SamplingParams p;
  p.top_k = 2;  // 0.4 and 0.3 survive: 4/7 and 3/7
  const auto f = frequencies(logs_of({0.1, 0.4, 0.2, 0.3}), p, 20000, 9);
  EXPECT_EQ(f[0], 0.0);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[1], 4.0 / 7, 0.015);
  EXPECT_NEAR(f[3], 3.0 / 7, 0.015);
  p.top_k = 1;
  p.temperature = 5.0f;
  EXPECT_NEAR(frequencies(logs_of({0.1, 0.4, 0.2, 0.3}), p, 500, 10)[1], 1.0, 1e-12);
}

TEST(Sampler, TopPKeepsTheSmallestHeadReachingP) {
  SamplingParams p;
  p.top_p = 0.6f;  // 0.5 alone is short of 0.6; 0.5 + 0.3 reaches it: 5/8 and 3/8
  const auto f = frequencies(logs_of({0.3, 0.5, 0.2}), p, 20000, 11);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[1], 5.0 / 8, 0.015);
  EXPECT_NEAR(f[0], 3.0 / 8, 0.015);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  SamplingParams p;
  p.min_p = 0.5f;  // threshold 0.25: 0.5 and 0.3 stay
  const auto f = frequencies(logs_of({0.5, 0.3, 0.2}), p, 20000, 12);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[0], 5.0 / 8, 0.015);
}

TEST(Sampler, SameSeedSameDrawsAndChoicesGetTheirOwnStreams) {
  SamplingParams p;
  const auto logits = logs_of({0.25, 0.25, 0.25, 0.25});
  Sampler s(4);
  const auto run = [&](uint64_t seed) {
    SequenceRng rng(seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      auto l = logits;
      out.push_back(s.sample(l, p, {}, 0, rng));
    }
    return out;
  };
  EXPECT_EQ(run(choice_seed(42, 0)), run(choice_seed(42, 0)));
  EXPECT_NE(run(choice_seed(42, 0)), run(choice_seed(42, 1)));
  EXPECT_NE(run(choice_seed(42, 0)), run(choice_seed(43, 0)));
}

TEST(Sampler, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
  Sampler s(3);
  const std::vector<float> l{0.0f, static_cast<float>(std::log(2.0)), static_cast<float>(std::log(3.0))};
  EXPECT_NEAR(s.logprob_of(l, 0), std::log(1.0 / 6), 1e-6);
  EXPECT_NEAR(s.logprob_of(l, 2), std::log(3.0 / 6), 1e-6);
  std::vector<TokenLogprob> top;
  s.top_logprobs(l, 2, top);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].token, 2);
  EXPECT_NEAR(top[0].logprob, std::log(0.5), 1e-6);
  EXPECT_EQ(top[1].token, 1);
  EXPECT_NEAR(top[1].logprob, std::log(2.0 / 6), 1e-6);
  s.top_logprobs(std::vector<float>{1.0f, 1.0f, 0.0f}, 5, top);  // more asked than exist; ties by lower id
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 0);
  EXPECT_EQ(top[1].token, 1);
}

// A grammar mask as the engine passes it: bit t of word t / 64.
std::vector<uint64_t> mask_of(size_t vocab, std::initializer_list<int> allowed) {
  std::vector<uint64_t> bits((vocab + 63) / 64, 0);
  for (int t : allowed) bits[static_cast<size_t>(t) / 64] |= uint64_t{1} << (t % 64);
  return bits;
}

TEST(Sampler, GreedyTakesTheBestAllowedToken) {
  Sampler s(130);
  SequenceRng rng(1);
  SamplingParams p;
  p.temperature = 0;
  std::vector<float> l(130, 0.0f);
  l[3] = 9.0f;    // best, not allowed
  l[70] = 2.0f;   // allowed
  l[129] = 5.0f;  // best allowed, in the last (partial) word
  const auto allowed = mask_of(130, {0, 70, 129});
  EXPECT_EQ(s.sample(l, p, {}, 0, rng, {allowed}), 129);
  std::vector<float> l2(130, 1.0f);
  l2[3] = 50.0f;
  p.logit_bias = {{3, 100.0f}};  // a bias cannot bring a masked token back
  const auto only_64 = mask_of(130, {64});
  EXPECT_EQ(s.sample(l2, p, {}, 0, rng, {only_64}), 64);
  const std::vector<int32_t> ids{0, 70, 129};  // the same mask as a list of ids
  std::vector<float> l3(130, 0.0f);
  l3[3] = 9.0f;
  l3[70] = 2.0f;
  l3[129] = 5.0f;
  p.logit_bias.clear();
  EXPECT_EQ(s.sample(l3, p, {}, 0, rng, {allowed, ids}), 129);
}

TEST(Sampler, EverySamplingModeDrawsOnlyAllowedTokensInTheirProportions) {
  // Allowed: 1 (p = 0.1), 2 (p = 0.3) and 5 (p = 0.2) of six; within them the draw follows 1 : 3 : 2.
  const auto logits = logs_of({0.1, 0.1, 0.3, 0.1, 0.2, 0.2});
  const auto allowed = mask_of(6, {1, 2, 5});
  std::vector<SamplingParams> modes(4);
  modes[1].top_k = 2;     // of the allowed: 2 and 5
  modes[2].top_p = 0.6f;  // 2 (0.5 of the allowed mass), then 5 crosses 0.6
  modes[3].min_p = 0.5f;  // 0.1 < 0.5 * 0.3: token 1 goes
  const std::vector<std::vector<double>> expected = {
      {0, 1.0 / 6, 3.0 / 6, 0, 0, 2.0 / 6}, {0, 0, 0.6, 0, 0, 0.4}, {0, 0, 0.6, 0, 0, 0.4}, {0, 0, 0.6, 0, 0, 0.4}};
  for (size_t m = 0; m < modes.size(); ++m) {
    Sampler s(6);
    SequenceRng rng(42 + m);
    std::vector<double> f(6, 0.0);
    const int draws = 20000;
    for (int i = 0; i < draws; ++i) {
      auto l = logits;
      f[static_cast<size_t>(s.sample(l, modes[m], {}, 0, rng, {allowed}))] += 1.0 / draws;
    }
    for (size_t t = 0; t < 6; ++t) {
      if (expected[m][t] == 0) {
        EXPECT_EQ(f[t], 0.0) << "mode " << m << " token " << t;
      } else {
        EXPECT_NEAR(f[t], expected[m][t], 0.015) << "mode " << m << " token " << t;
      }
    }
  }
}

TEST(Sampler, AListOfAllowedIdsDrawsExactlyAsTheBitset) {
  const auto logits = logs_of({0.1, 0.1, 0.3, 0.1, 0.2, 0.2});
  const auto bits = mask_of(6, {1, 2, 5});
  const std::vector<int32_t> ids{1, 2, 5};
  SamplingParams p;
  p.top_p = 0.9f;
  Sampler a(6), b(6);
  SequenceRng ra(9), rb(9);
  for (int i = 0; i < 2000; ++i) {
    auto la = logits, lb = logits;
    ASSERT_EQ(a.sample(la, p, {}, 0, ra, {bits}), b.sample(lb, p, {}, 0, rb, {bits, ids})) << "draw " << i;
  }
}

}  // namespace
}  // namespace pensieve::engine
