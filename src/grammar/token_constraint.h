#pragma once
// A compiled grammar bound to one vocabulary: for each matcher state, the set of tokens allowed next (a bit
// per token), computed once by walking the token trie and cached, so that a state seen again by any sequence
// costs a lookup. Shared by every sequence of every request that uses the same grammar; thread-safe.
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "grammar/automaton.h"
#include "grammar/token_vocabulary.h"

namespace pensieve::grammar {

struct TokenMask {
  std::vector<uint64_t> bits;  // bit t set: token t is allowed
  size_t allowed = 0;          // number of bits set
  std::vector<int32_t> ids;    // the allowed tokens, ascending, when at most 1/16 of the vocabulary (else empty)
  bool test(int32_t t) const { return (bits[static_cast<size_t>(t) >> 6] >> (t & 63)) & 1; }
};

class TokenConstraint {
 public:
  // Masks kept per constraint at most (16 MiB of bitsets with a 128k vocabulary); past that the cache starts
  // over, and states seen again walk the trie again.
  static constexpr size_t kMaskBudgetBytes = 16u << 20;

  TokenConstraint(Grammar grammar, std::shared_ptr<const TokenVocabulary> vocabulary,
                  size_t mask_budget_bytes = kMaskBudgetBytes);

  int32_t start() const { return start_; }
  // Tokens allowed in `state`. The reference stays valid until the next mask() call on this constraint.
  const TokenMask& mask(int32_t state);
  // The state after `token`; Automaton::kDead when the token is not allowed.
  int32_t advance(int32_t state, int32_t token);
  bool accepting(int32_t state);
  // Complete, and nothing may follow: the sequence should end here.
  bool finished(int32_t state);

  const TokenVocabulary& vocabulary() const { return *vocabulary_; }
  size_t cached_masks() const;

 private:
  void fill(int32_t state, TokenMask& out);

  mutable std::mutex mutex_;
  Automaton automaton_;
  std::shared_ptr<const TokenVocabulary> vocabulary_;
  int32_t start_;
  std::vector<std::unique_ptr<TokenMask>> masks_;  // by state, built on first use
  size_t n_masks_ = 0;
  size_t max_masks_;
  std::vector<int32_t> walk_;                      // trie walk scratch: state per depth
};

// One sequence's position in a shared constraint.
class GrammarCursor {
 public:
  explicit GrammarCursor(std::shared_ptr<TokenConstraint> c) : constraint_(std::move(c)), state_(constraint_->start()) {}
  const TokenMask& allowed() { return constraint_->mask(state_); }
  // False (and the cursor unchanged) when the token is not allowed.
  bool advance(int32_t token);
  bool finished() { return constraint_->finished(state_); }
  bool accepting() { return constraint_->accepting(state_); }

 private:
  std::shared_ptr<TokenConstraint> constraint_;
  int32_t state_;
};

}  // namespace pensieve::grammar
