#pragma once
// Turning one row of logits into the next token of one sequence. Pure given its inputs: the sequence's own
// history and its own RNG, so a token never depends on what else is in the batch. Order of the transforms:
// logit_bias -> repetition penalty (last N tokens of prompt + output) -> presence / frequency penalties
// (output tokens) -> greedy argmax at temperature 0, else temperature -> top_k -> top_p -> min_p -> draw,
// where a grammar's mask limits the argmax and the draw to the tokens it allows (no transform brings the
// others back; the row is only read, not rewritten, for them).
// A Sampler holds vocab-sized scratch reused for every call, so sampling allocates nothing per token.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "engine/request.h"

namespace pensieve::engine {

// A sequence's random stream: the request's seed (and the choice index) fully determine it.
class SequenceRng {
 public:
  explicit SequenceRng(uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  std::mt19937_64 engine_;
};

// Seed of choice `choice` of a request seeded `seed`: distinct streams per choice, each reproducible.
uint64_t choice_seed(uint64_t seed, int choice);

// The tokens a grammar allows: a bitset (bit t of word t / 64) and, when few are allowed, their ids in
// ascending order, which let the sampler look at those alone instead of the whole row.
struct AllowedTokens {
  AllowedTokens() = default;
  AllowedTokens(std::span<const uint64_t> b, std::span<const int32_t> i = {}) : bits(b), ids(i) {}
  std::span<const uint64_t> bits;
  std::span<const int32_t> ids;
  bool empty() const { return bits.empty() && ids.empty(); }
};

class Sampler {
 public:
  explicit Sampler(int vocab);

  // Picks a token from `logits` (modified in place). `history` is prompt + output so far, `n_prompt` of them
  // the prompt. `allowed`, when not empty, holds the tokens a grammar allows (at least one); the others are
  // never picked.
  int32_t sample(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> history,
                 size_t n_prompt, SequenceRng& rng, AllowedTokens allowed = {});

  // Log-softmax of `logits` at `token`, and (when top_n > 0) the top_n most likely tokens, best first, ties
  // by lower id. Call on the raw logits, before sample() changes them.
  float logprob_of(std::span<const float> logits, int32_t token);
  void top_logprobs(std::span<const float> logits, int top_n, std::vector<TokenLogprob>& out);

  // True when the token and the logprobs `params` asks for follow from the head of the row alone
  // (backend::TopLogits): greedy, with no transform that could lift a token from outside the head and no
  // grammar. The GPU engine then reads the head instead of the whole row.
  static bool head_suffices(const SamplingParams& params, bool constrained);
  // What sample() and the logprob calls give for the whole row, from its head (head_suffices must hold).
  static int32_t sample_from_head(const backend::TopLogits& head);
  static float logprob_from_head(const backend::TopLogits& head, int32_t token);
  static void top_logprobs_from_head(const backend::TopLogits& head, int top_n, std::vector<TokenLogprob>& out);

  // The individual transforms, public so they can be checked one by one.
  static void apply_logit_bias(std::span<float> logits, std::span<const std::pair<int32_t, float>> bias);
  void apply_penalties(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> history,
                       size_t n_prompt);

 private:
  struct Candidate {
    int32_t id;
    float p;  // logit, then probability
  };
  // Draws among the allowed tokens (all when `allowed` is empty).
  int32_t draw(std::span<float> logits, const SamplingParams& params, SequenceRng& rng, const AllowedTokens& allowed);
  double log_sum_exp(std::span<const float> logits) const;

  std::vector<Candidate> candidates_;
  std::vector<int32_t> counts_;  // per token, zero between calls
};

}  // namespace pensieve::engine
