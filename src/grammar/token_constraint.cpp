#include "grammar/token_constraint.h"

#include <algorithm>
#include <bit>

namespace pensieve::grammar {

TokenConstraint::TokenConstraint(Grammar grammar, std::shared_ptr<const TokenVocabulary> vocabulary,
                                 size_t mask_budget_bytes)
    : automaton_(std::move(grammar)),
      vocabulary_(std::move(vocabulary)),
      start_(automaton_.start()),
      max_masks_(std::max<size_t>(1, mask_budget_bytes / ((static_cast<size_t>(vocabulary_->size()) + 7) / 8))) {
  walk_.resize(vocabulary_->max_depth() + 1);
}

const TokenMask& TokenConstraint::mask(int32_t state) {
  std::lock_guard lock(mutex_);
  const auto s = static_cast<size_t>(state);
  if (masks_.size() <= s) masks_.resize(automaton_.n_states());
  if (!masks_[s]) {
    if (n_masks_ >= max_masks_) {
      for (auto& m : masks_) m.reset();
      n_masks_ = 0;
    }
    ++n_masks_;
    auto m = std::make_unique<TokenMask>();
    fill(state, *m);
    masks_[s] = std::move(m);
  }
  return *masks_[s];
}

// One preorder pass over the trie: a node whose bytes kill every parse stack is skipped with its subtree.
void TokenConstraint::fill(int32_t state, TokenMask& out) {
  const TokenVocabulary& v = *vocabulary_;
  out.bits.assign((static_cast<size_t>(v.size()) + 63) / 64, 0);
  const auto set = [&](int32_t t) {
    uint64_t& w = out.bits[static_cast<size_t>(t) >> 6];
    const uint64_t bit = uint64_t{1} << (t & 63);
    out.allowed += (w & bit) == 0;
    w |= bit;
  };
  if (state != Automaton::kDead) {
    const auto& trie = v.trie();
    const auto& tokens_at = v.tokens_at();
    walk_[0] = state;
    for (size_t i = 0; i < trie.size();) {
      const TokenVocabulary::TrieNode& node = trie[i];
      const int32_t next = automaton_.step(walk_[node.depth], node.byte);
      if (next == Automaton::kDead) {
        i = node.skip;
        continue;
      }
      walk_[node.depth + 1u] = next;
      for (uint32_t k = 0; k < node.n_tokens; ++k) set(tokens_at[node.first_token + k]);
      ++i;
    }
    if (automaton_.accepting(state)) {
      for (int32_t t : v.end_tokens()) set(t);
    }
  }
  if (out.allowed * 16 <= static_cast<size_t>(v.size())) {
    out.ids.reserve(out.allowed);
    for (size_t w = 0; w < out.bits.size(); ++w) {
      for (uint64_t bits = out.bits[w]; bits; bits &= bits - 1) {
        out.ids.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(std::countr_zero(bits))));
      }
    }
  }
}

int32_t TokenConstraint::advance(int32_t state, int32_t token) {
  std::lock_guard lock(mutex_);
  if (state == Automaton::kDead || token < 0 || token >= vocabulary_->size()) return Automaton::kDead;
  if (vocabulary_->is_end(token)) return automaton_.accepting(state) ? state : Automaton::kDead;
  const std::string& piece = vocabulary_->piece(token);
  if (piece.empty()) return Automaton::kDead;
  return automaton_.step(state, piece);
}

bool TokenConstraint::accepting(int32_t state) {
  std::lock_guard lock(mutex_);
  return automaton_.accepting(state);
}

bool TokenConstraint::finished(int32_t state) {
  std::lock_guard lock(mutex_);
  return automaton_.finished(state);
}

size_t TokenConstraint::cached_masks() const {
  std::lock_guard lock(mutex_);
  return n_masks_;
}

bool GrammarCursor::advance(int32_t token) {
  const int32_t next = constraint_->advance(state_, token);
  if (next == Automaton::kDead) return false;
  state_ = next;
  return true;
}

}  // namespace pensieve::grammar
