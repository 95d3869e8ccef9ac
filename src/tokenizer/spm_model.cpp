#include "tokenizer/spm_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tokenizer/utf8.h"

namespace pensieve::tokenizer {

namespace {

// Heap order: highest score first, then leftmost.
bool later(const SentencePieceModel::Scratch::Candidate& a, const SentencePieceModel::Scratch::Candidate& b) {
  return a.score < b.score || (a.score == b.score && a.left > b.left);
}

}  // namespace

SentencePieceModel::SentencePieceModel(const TextToId& text_to_id, std::span<const float> scores, int32_t unk_id)
    : text_to_id_(&text_to_id), scores_(scores), unk_id_(unk_id) {
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_token_[b] = find_id(text_to_id, name);
  }
}

void SentencePieceModel::push_candidate(std::string_view text, Scratch& scratch, int32_t left) const {
  const auto& symbols = scratch.symbols;
  if (left < 0) return;
  int32_t right = symbols[left].next;
  if (right < 0) return;
  uint32_t length = symbols[left].length + symbols[right].length;
  int32_t id = find_id(*text_to_id_, text.substr(symbols[left].begin, length));
  if (id < 0) return;
  float score = static_cast<std::size_t>(id) < scores_.size() ? scores_[id] : 0.0f;
  if (std::isinf(score) && score < 0) return;  // a token no merge produces (HF exports)
  scratch.heap.push_back({score, left, length});
  std::push_heap(scratch.heap.begin(), scratch.heap.end(), later);
}

void SentencePieceModel::emit_symbol(std::string_view piece, std::vector<int32_t>& out) const {
  int32_t id = find_id(*text_to_id_, piece);
  if (id >= 0) {
    out.push_back(id);
    return;
  }
  // Merged symbols are always tokens, so only single characters arrive here.
  for (char c : piece) {
    int32_t byte_id = byte_token_[static_cast<uint8_t>(c)];
    if (byte_id >= 0) {
      out.push_back(byte_id);
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);
      return;  // one unknown token for the whole character
    }
  }
}

void SentencePieceModel::encode(std::string_view text, Scratch& scratch, std::vector<int32_t>& out) const {
  auto& symbols = scratch.symbols;
  auto& heap = scratch.heap;
  symbols.clear();
  heap.clear();
  for (std::size_t pos = 0; pos < text.size();) {
    auto length = static_cast<uint32_t>(utf8_char_length(text, pos));
    auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(pos), length, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
    pos += length;
  }
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_candidate(text, scratch, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Scratch::Candidate c = heap.back();
    heap.pop_back();
    auto& left = symbols[c.left];
    // Stale when the left symbol is gone or either side has grown since the candidate was queued.
    if (left.length == 0 || left.next < 0 || left.length + symbols[left.next].length != c.length) continue;
    auto& right = symbols[left.next];
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    push_candidate(text, scratch, left.prev);
    push_candidate(text, scratch, c.left);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    emit_symbol(text.substr(symbols[i].begin, symbols[i].length), out);
  }
}

}  // namespace pensieve::tokenizer
