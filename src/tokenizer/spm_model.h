#pragma once
// SentencePiece-style BPE (Llama 2, Mistral, Phi-3): text (spaces already written as U+2581) starts as one
// symbol per character; the adjacent pair whose concatenation is the highest-scoring vocabulary token is
// merged first (leftmost among equal scores). Characters that end up without a token fall back to <0xXX>
// byte tokens, or to the unknown token.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/string_map.h"

namespace pensieve::tokenizer {

class SentencePieceModel {
 public:
  struct Scratch {
    struct Symbol {
      uint32_t begin;
      uint32_t length;
      int32_t prev;
      int32_t next;
    };
    struct Candidate {
      float score;
      int32_t left;
      uint32_t length;  // length of the merged text, to detect stale candidates
    };
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };

  SentencePieceModel() = default;
  SentencePieceModel(const TextToId& text_to_id, std::span<const float> scores, int32_t unk_id);

  void encode(std::string_view text, Scratch& scratch, std::vector<int32_t>& out) const;

 private:
  void push_candidate(std::string_view text, Scratch& scratch, int32_t left) const;
  void emit_symbol(std::string_view piece, std::vector<int32_t>& out) const;

  const TextToId* text_to_id_ = nullptr;
  std::span<const float> scores_;
  int32_t byte_token_[256] = {};
  int32_t unk_id_ = -1;
};

}  // namespace pensieve::tokenizer
