#include "grammar/token_vocabulary.h"

#include <algorithm>

namespace pensieve::grammar {

TokenVocabulary::TokenVocabulary(const tokenizer::Tokenizer& tok) : vocab_size_(tok.vocab_size()) {
  pieces_.resize(static_cast<size_t>(vocab_size_));
  is_end_.assign(static_cast<size_t>(vocab_size_), false);
  for (int32_t id : tok.end_of_generation_ids()) {
    if (id >= 0 && id < vocab_size_ && !is_end_[static_cast<size_t>(id)]) {
      is_end_[static_cast<size_t>(id)] = true;
      end_tokens_.push_back(id);
    }
  }
  std::vector<std::pair<std::string, int32_t>> sorted;
  sorted.reserve(static_cast<size_t>(vocab_size_));
  for (int32_t id = 0; id < vocab_size_; ++id) {
    if (is_end_[static_cast<size_t>(id)] || tokenizer::hidden_unless_special(tok.token_kind(id))) continue;
    std::string piece(tok.token_piece(id));
    if (piece.empty()) continue;
    pieces_[static_cast<size_t>(id)] = piece;
    sorted.emplace_back(std::move(piece), id);
  }
  std::sort(sorted.begin(), sorted.end());
  trie_.reserve(sorted.size() * 2);
  tokens_at_.reserve(sorted.size());
  build(sorted, 0, sorted.size(), 0);
}

// Appends the subtrees for sorted[lo, hi), which share their first `depth` bytes; pieces of exactly `depth`
// bytes were taken by the caller's node.
void TokenVocabulary::build(std::vector<std::pair<std::string, int32_t>>& sorted, size_t lo, size_t hi,
                            size_t depth) {
  max_depth_ = std::max(max_depth_, depth + 1);
  size_t i = lo;
  while (i < hi) {
    const auto byte = static_cast<uint8_t>(sorted[i].first[depth]);
    size_t end = i;
    while (end < hi && static_cast<uint8_t>(sorted[end].first[depth]) == byte) ++end;
    const size_t at = trie_.size();
    trie_.push_back({byte, static_cast<uint16_t>(depth), 0, static_cast<uint32_t>(tokens_at_.size()), 0});
    size_t rest = i;
    while (rest < end && sorted[rest].first.size() == depth + 1) {  // shorter strings sort first
      tokens_at_.push_back(sorted[rest].second);
      ++rest;
    }
    trie_[at].n_tokens = static_cast<uint32_t>(rest - i);
    if (rest < end) build(sorted, rest, end, depth + 1);
    trie_[at].skip = static_cast<uint32_t>(trie_.size());
    i = end;
  }
}

}  // namespace pensieve::grammar
