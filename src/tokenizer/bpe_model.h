#pragma once
// Byte-level BPE (GPT-2 family): a pre-tokenized piece starts as one symbol per byte and adjacent symbols are
// merged by merge rank, lowest first (leftmost among equal ranks), until no listed merge applies.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/string_map.h"

namespace pensieve::tokenizer {

class BytePairModel {
 public:
  static constexpr std::size_t kCachedPieceBytes = 22;
  static constexpr std::size_t kCachedPieceIds = 7;

  // Reusable per-thread working memory, including a cache of recently encoded pieces.
  struct Scratch {
    struct Symbol {
      int32_t id;
      int32_t prev;
      int32_t next;
    };
    struct Candidate {
      int32_t rank;
      int32_t left;
      int32_t left_id;
      int32_t right_id;
      int32_t merged;
    };
    // Direct-mapped cache of short pieces, one cache line per entry: repeated words cost one lookup.
    struct CachedPiece {
      uint64_t hash;
      uint8_t length;  // 0: empty slot
      uint8_t n_ids;
      char bytes[kCachedPieceBytes];
      int32_t ids[kCachedPieceIds];
    };
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
    std::vector<CachedPiece> cache;
  };

  BytePairModel() = default;
  // `byte_text[id]` is each token's raw bytes (empty: not a merge product, e.g. a control token); `merges` are "left right" in the vocabulary's alphabet, in
  // rank order, and `text_to_id` maps that alphabet's text to ids.
  BytePairModel(std::span<const std::string> byte_text, const TextToId& text_to_id,
                std::span<const std::string> merges, bool ignore_merges);

  // Appends the ids for one piece of raw bytes.
  void encode_piece(std::string_view bytes, Scratch& scratch, std::vector<int32_t>& out) const;

 private:
  struct MergeSlot {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  const MergeSlot* find_merge(int32_t left, int32_t right) const;
  void insert_merge(int32_t left, int32_t right, int32_t rank, int32_t merged);
  void merge_symbols(std::string_view bytes, Scratch& scratch, std::vector<int32_t>& out) const;
  void push_candidate(Scratch& scratch, int32_t left) const;

  TextToId bytes_to_id_;
  int32_t byte_token_[256] = {};
  std::vector<MergeSlot> byte_pair_merges_;  // 256 x 256, direct: the first merges of every piece
  std::vector<MergeSlot> merges_;  // open addressing, power-of-two size
  uint64_t mask_ = 0;
  bool ignore_merges_ = false;
};

}  // namespace pensieve::tokenizer
