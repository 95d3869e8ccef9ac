#pragma once
// A model's vocabulary as the grammar matcher sees it: the bytes of every token that may appear in constrained
// text, laid out as a trie in preorder so that one pass over an array, skipping dead subtrees, visits every
// token whose bytes keep the grammar alive. Control tokens never match text; the end-of-generation tokens are
// allowed exactly when the grammar is complete. Built once per tokenizer and shared by every constraint.
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace pensieve::grammar {

class TokenVocabulary {
 public:
  struct TrieNode {
    uint8_t byte;
    uint16_t depth;       // 0 for the first byte of a token
    uint32_t skip;        // index of the first node after this subtree
    uint32_t first_token; // tokens ending exactly here: tokens_at[first_token .. first_token + n_tokens)
    uint32_t n_tokens;
  };

  explicit TokenVocabulary(const tokenizer::Tokenizer& tokenizer);

  int32_t size() const { return vocab_size_; }
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<int32_t>& tokens_at() const { return tokens_at_; }
  size_t max_depth() const { return max_depth_; }
  // The bytes a token adds to the text; empty for tokens that never match (controls, empty pieces).
  const std::string& piece(int32_t token) const { return pieces_[static_cast<size_t>(token)]; }
  bool is_end(int32_t token) const { return is_end_[static_cast<size_t>(token)]; }
  const std::vector<int32_t>& end_tokens() const { return end_tokens_; }

 private:
  void build(std::vector<std::pair<std::string, int32_t>>& sorted, size_t lo, size_t hi, size_t depth);

  int32_t vocab_size_ = 0;
  std::vector<std::string> pieces_;
  std::vector<bool> is_end_;
  std::vector<int32_t> end_tokens_;
  std::vector<TrieNode> trie_;
  std::vector<int32_t> tokens_at_;
  size_t max_depth_ = 0;
};

}  // namespace pensieve::grammar
