#include "engine/sampler.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <limits>

namespace pensieve::engine {

uint64_t choice_seed(uint64_t seed, int choice) {
  // splitmix64 step: neighbouring seeds and choices land far apart.
  uint64_t x = seed + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(choice) + 1);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Sampler::Sampler(int vocab) {
  candidates_.reserve(static_cast<size_t>(vocab));
  counts_.assign(static_cast<size_t>(vocab), 0);
}

void Sampler::apply_logit_bias(std::span<float> logits, std::span<const std::pair<int32_t, float>> bias) {
  for (const auto& [id, b] : bias) {
    if (id >= 0 && static_cast<size_t>(id) < logits.size()) logits[static_cast<size_t>(id)] += b;
  }
}

void Sampler::apply_penalties(std::span<float> logits, const SamplingParams& p, std::span<const int32_t> history,
                              size_t n_prompt) {
  const auto in_vocab = [&](int32_t t) { return t >= 0 && static_cast<size_t>(t) < logits.size(); };
  if (p.repetition_penalty != 1.0f && p.repetition_last_n != 0) {
    const size_t n = p.repetition_last_n < 0 ? history.size()
                                             : std::min(history.size(), static_cast<size_t>(p.repetition_last_n));
    const auto window = history.last(n);
    // counts_ marks tokens already penalized, so a token seen twice is penalized once.
    for (int32_t t : window) {
      if (!in_vocab(t) || counts_[static_cast<size_t>(t)]) continue;
      counts_[static_cast<size_t>(t)] = 1;
      float& l = logits[static_cast<size_t>(t)];
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    }
    for (int32_t t : window) {
      if (in_vocab(t)) counts_[static_cast<size_t>(t)] = 0;
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    const auto output = history.subspan(std::min(n_prompt, history.size()));
    for (int32_t t : output) {
      if (in_vocab(t)) ++counts_[static_cast<size_t>(t)];
    }
    for (int32_t t : output) {
      if (!in_vocab(t)) continue;
      int32_t& c = counts_[static_cast<size_t>(t)];
      if (c == 0) continue;  // already applied for this token
      logits[static_cast<size_t>(t)] -= p.frequency_penalty * static_cast<float>(c) + p.presence_penalty;
      c = 0;
    }
  }
}

namespace {

// Calls f(t) for every token `allowed` lets through (every token when it is empty), in ascending order.
template <typename F>
void for_each_allowed(size_t n, const AllowedTokens& allowed, F f) {
  if (!allowed.ids.empty()) {
    for (int32_t id : allowed.ids) f(static_cast<size_t>(id));
  } else if (allowed.bits.empty()) {
    for (size_t t = 0; t < n; ++t) f(t);
  } else {
    for (size_t w = 0; w < allowed.bits.size(); ++w) {
      for (uint64_t bits = allowed.bits[w]; bits; bits &= bits - 1) {
        const size_t t = w * 64 + static_cast<size_t>(std::countr_zero(bits));
        if (t >= n) return;
        f(t);
      }
    }
  }
}

}  // namespace

int32_t Sampler::sample(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> history,
                        size_t n_prompt, SequenceRng& rng, AllowedTokens allowed) {
  apply_logit_bias(logits, params.logit_bias);
  apply_penalties(logits, params, history, n_prompt);
  if (params.temperature > 0.0f) return draw(logits, params, rng, allowed);
  if (allowed.empty()) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  size_t best = SIZE_MAX;  // the first of the best allowed tokens
  for_each_allowed(logits.size(), allowed, [&](size_t t) {
    if (best == SIZE_MAX || logits[t] > logits[best]) best = t;
  });
  return best == SIZE_MAX ? 0 : static_cast<int32_t>(best);
}

int32_t Sampler::draw(std::span<float> logits, const SamplingParams& params, SequenceRng& rng,
                      const AllowedTokens& allowed) {
  const auto better = [](const Candidate& a, const Candidate& b) { return a.p > b.p || (a.p == b.p && a.id < b.id); };
  candidates_.clear();
  for_each_allowed(logits.size(), allowed, [&](size_t t) {
    if (logits[t] != -std::numeric_limits<float>::infinity()) {
      candidates_.push_back({static_cast<int32_t>(t), logits[t] / params.temperature});
    }
  });
  if (candidates_.empty()) return 0;  // every token banned: nothing sensible to draw

  const bool want_sorted = params.top_p < 1.0f;
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < candidates_.size()) {
    const auto kth = candidates_.begin() + params.top_k;
    std::nth_element(candidates_.begin(), kth - 1, candidates_.end(), better);
    candidates_.erase(kth, candidates_.end());
  }
  if (want_sorted) std::sort(candidates_.begin(), candidates_.end(), better);

  float top = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : candidates_) top = std::max(top, c.p);
  double sum = 0;
  for (Candidate& c : candidates_) {
    c.p = std::exp(c.p - top);
    sum += c.p;
  }

  if (want_sorted) {
    // Smallest head of the sorted list whose mass reaches top_p (the token crossing it included).
    double mass = 0;
    size_t keep = 0;
    while (keep < candidates_.size()) {
      mass += candidates_[keep++].p / sum;
      if (mass >= params.top_p) break;
    }
    candidates_.resize(keep);
  }
  if (params.min_p > 0.0f) {
    // p / p_max >= min_p; the best token has weight exp(0) = 1 before normalization.
    std::erase_if(candidates_, [&](const Candidate& c) { return c.p < params.min_p; });
  }

  sum = 0;
  for (const Candidate& c : candidates_) sum += c.p;
  const double target = rng.uniform() * sum;
  double acc = 0;
  for (const Candidate& c : candidates_) {
    acc += c.p;
    if (target < acc) return c.id;
  }
  return candidates_.back().id;
}

bool Sampler::head_suffices(const SamplingParams& p, bool constrained) {
  const bool penalized = (p.repetition_penalty != 1.0f && p.repetition_last_n != 0) || p.presence_penalty != 0.0f ||
                         p.frequency_penalty != 0.0f || !p.logit_bias.empty();
  return !constrained && !penalized && p.temperature <= 0.0f && p.top_logprobs <= backend::kTopLogits;
}

int32_t Sampler::sample_from_head(const backend::TopLogits& head) { return head.count > 0 ? head.ids[0] : 0; }

float Sampler::logprob_from_head(const backend::TopLogits& head, int32_t token) {
  for (int i = 0; i < head.count; ++i) {
    if (head.ids[i] == token) return head.logits[i] - head.log_sum_exp;
  }
  return -std::numeric_limits<float>::infinity();  // not reached: the token sampled from a head is in it
}

void Sampler::top_logprobs_from_head(const backend::TopLogits& head, int top_n, std::vector<TokenLogprob>& out) {
  out.clear();
  for (int i = 0; i < std::min(top_n, static_cast<int>(head.count)); ++i) {
    out.push_back({head.ids[i], head.logits[i] - head.log_sum_exp});
  }
}

double Sampler::log_sum_exp(std::span<const float> logits) const {
  const float top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - top);
  return top + std::log(sum);
}

float Sampler::logprob_of(std::span<const float> logits, int32_t token) {
  return static_cast<float>(logits[static_cast<size_t>(token)] - log_sum_exp(logits));
}

void Sampler::top_logprobs(std::span<const float> logits, int top_n, std::vector<TokenLogprob>& out) {
  out.clear();
  if (top_n <= 0) return;
  const auto better = [](const Candidate& a, const Candidate& b) { return a.p > b.p || (a.p == b.p && a.id < b.id); };
  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i) candidates_.push_back({static_cast<int32_t>(i), logits[i]});
  const size_t n = std::min(candidates_.size(), static_cast<size_t>(top_n));
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n), candidates_.end(),
                    better);
  const double lse = log_sum_exp(logits);
  for (size_t i = 0; i < n; ++i) {
    out.push_back({candidates_[i].id, static_cast<float>(candidates_[i].p - lse)});
  }
}

}  // namespace pensieve::engine
