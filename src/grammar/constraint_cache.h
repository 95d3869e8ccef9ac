#pragma once
// Compiled grammars for one model, by grammar text. Agents send the same schema turn after turn; reusing the
// compiled constraint reuses its cached masks too, so only the first request pays for the trie walks. The
// vocabulary trie is built on first use (a served model that never sees a grammar never pays for it).
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "grammar/token_constraint.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::grammar {

class ConstraintCache {
 public:
  static constexpr size_t kDefaultCapacity = 16;  // x TokenConstraint::kMaskBudgetBytes at most

  // The tokenizer must outlive the cache.
  explicit ConstraintCache(const tokenizer::Tokenizer& tokenizer, size_t capacity = kDefaultCapacity);

  // The constraint for GBNF `text` (root rule "root"), compiled on a miss; throws GrammarError.
  std::shared_ptr<TokenConstraint> get(const std::string& text);
  size_t size() const;

 private:
  const tokenizer::Tokenizer& tokenizer_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::shared_ptr<const TokenVocabulary> vocabulary_;
  std::list<std::pair<std::string, std::shared_ptr<TokenConstraint>>> lru_;  // most recent first
  std::unordered_map<std::string, decltype(lru_)::iterator> by_text_;
};

}  // namespace pensieve::grammar
