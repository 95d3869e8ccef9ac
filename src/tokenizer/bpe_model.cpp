#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <bit>

namespace pensieve::tokenizer {

namespace {

constexpr uint64_t kEmptyKey = ~uint64_t{0};
constexpr std::size_t kMaxCachedPieces = 1 << 16;
constexpr std::size_t kMaxCachedPieceBytes = 64;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}

// Heap order: lowest rank first, then leftmost.
bool later(const BytePairModel::Scratch::Candidate& a, const BytePairModel::Scratch::Candidate& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

}  // namespace

BytePairModel::BytePairModel(std::span<const std::string> byte_text, const TextToId& text_to_id,
                             std::span<const std::string> merges, bool ignore_merges)
    : ignore_merges_(ignore_merges) {
  for (std::size_t id = 0; id < byte_text.size(); ++id) {
    if (!byte_text[id].empty()) bytes_to_id_.insert_or_assign(byte_text[id], static_cast<int32_t>(id));
  }
  for (int b = 0; b < 256; ++b) {
    byte_token_[b] = find_id(bytes_to_id_, std::string_view(reinterpret_cast<const char*>(&b), 1));
  }
  std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, merges.size() * 2));
  merges_.assign(capacity, MergeSlot{kEmptyKey, 0, 0});
  mask_ = capacity - 1;
  std::string joined;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    std::string_view m = merges[rank];
    // The separator is the first space after the first character (a token may itself be a space).
    std::size_t space = m.find(' ', 1);
    if (space == std::string_view::npos) continue;
    std::string_view left = m.substr(0, space);
    std::string_view right = m.substr(space + 1);
    int32_t left_id = find_id(text_to_id, left);
    int32_t right_id = find_id(text_to_id, right);
    joined.assign(left);
    joined.append(right);
    int32_t merged = find_id(text_to_id, joined);
    if (left_id < 0 || right_id < 0 || merged < 0) continue;
    if (find_merge(left_id, right_id) != nullptr) continue;  // the first (lowest) rank wins
    insert_merge(left_id, right_id, static_cast<int32_t>(rank), merged);
  }
}

const BytePairModel::MergeSlot* BytePairModel::find_merge(int32_t left, int32_t right) const {
  uint64_t key = pair_key(left, right);
  for (uint64_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    const MergeSlot& slot = merges_[i];
    if (slot.key == key) return &slot;
    if (slot.key == kEmptyKey) return nullptr;
  }
}

void BytePairModel::insert_merge(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  uint64_t key = pair_key(left, right);
  uint64_t i = mix(key) & mask_;
  while (merges_[i].key != kEmptyKey) i = (i + 1) & mask_;
  merges_[i] = MergeSlot{key, rank, merged};
}

void BytePairModel::encode_piece(std::string_view bytes, Scratch& scratch, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (ignore_merges_) {
    int32_t whole = find_id(bytes_to_id_, bytes);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  if (bytes.size() == 1) {
    int32_t id = byte_token_[static_cast<uint8_t>(bytes[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  if (bytes.size() > kMaxCachedPieceBytes) {
    merge_symbols(bytes, scratch, out);
    return;
  }
  auto hit = scratch.cache.find(bytes);
  if (hit != scratch.cache.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::size_t first = out.size();
  merge_symbols(bytes, scratch, out);
  if (scratch.cache.size() >= kMaxCachedPieces) scratch.cache.clear();
  scratch.cache.emplace(std::string(bytes), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
}

void BytePairModel::push_candidate(Scratch& scratch, int32_t left) const {
  const auto& symbols = scratch.symbols;
  int32_t right = symbols[left].next;
  if (right < 0) return;
  const MergeSlot* merge = find_merge(symbols[left].id, symbols[right].id);
  if (merge == nullptr) return;
  scratch.heap.push_back({merge->rank, left, symbols[left].id, symbols[right].id});
  std::push_heap(scratch.heap.begin(), scratch.heap.end(), later);
}

void BytePairModel::merge_symbols(std::string_view bytes, Scratch& scratch, std::vector<int32_t>& out) const {
  auto& symbols = scratch.symbols;
  auto& heap = scratch.heap;
  symbols.clear();
  heap.clear();
  const auto n = static_cast<int32_t>(bytes.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols.push_back({byte_token_[static_cast<uint8_t>(bytes[i])], i - 1, i + 1 < n ? i + 1 : -1});
  }
  for (int32_t i = 0; i + 1 < n; ++i) push_candidate(scratch, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Scratch::Candidate c = heap.back();
    heap.pop_back();
    auto& left = symbols[c.left];
    // Stale when either side has changed since the candidate was queued.
    if (left.id != c.left_id || left.next < 0 || symbols[left.next].id != c.right_id) continue;
    auto& right = symbols[left.next];
    left.id = find_merge(c.left_id, c.right_id)->merged;
    right.id = -2;  // gone
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    if (left.prev >= 0) push_candidate(scratch, left.prev);
    push_candidate(scratch, c.left);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) {
    if (symbols[i].id >= 0) out.push_back(symbols[i].id);
  }
}

}  // namespace pensieve::tokenizer
