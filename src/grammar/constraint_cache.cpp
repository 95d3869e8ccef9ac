#include "grammar/constraint_cache.h"

#include "grammar/gbnf.h"

namespace pensieve::grammar {

ConstraintCache::ConstraintCache(const tokenizer::Tokenizer& tokenizer, size_t capacity)
    : tokenizer_(tokenizer), capacity_(capacity) {}

std::shared_ptr<TokenConstraint> ConstraintCache::get(const std::string& text) {
  std::lock_guard lock(mutex_);
  if (auto it = by_text_.find(text); it != by_text_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  Grammar g = parse_gbnf(text);  // before the vocabulary: a bad grammar costs no trie
  if (!vocabulary_) vocabulary_ = std::make_shared<const TokenVocabulary>(tokenizer_);
  auto constraint = std::make_shared<TokenConstraint>(std::move(g), vocabulary_);
  lru_.emplace_front(text, constraint);
  by_text_[text] = lru_.begin();
  if (lru_.size() > capacity_) {
    by_text_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return constraint;
}

size_t ConstraintCache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace pensieve::grammar
