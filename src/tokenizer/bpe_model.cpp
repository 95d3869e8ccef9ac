#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <bit>

namespace pensieve::tokenizer {

namespace {

constexpr uint64_t kEmptyKey = ~uint64_t{0};
constexpr std::size_t kCacheSlots = 1 << 15;

uint64_t hash_bytes(std::string_view bytes) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ bytes.size();
  for (char c : bytes) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ULL;
  return h ^ (h >> 29);
}

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
  // Byte tokens have small ids in every byte-level vocabulary we know; when they do, pairs of them get a
  // direct table (found by find_merge before the hash probe).
  bool bytes_are_small = std::all_of(std::begin(byte_token_), std::end(byte_token_), [](int32_t id) { return id >= 0 && id < 256; });
  if (bytes_are_small) {
    std::vector<MergeSlot> table(256 * 256, MergeSlot{kEmptyKey, 0, 0});
    for (int32_t l = 0; l < 256; ++l) {
      for (int32_t r = 0; r < 256; ++r) {
        if (const MergeSlot* m = find_merge(l, r)) table[static_cast<std::size_t>(l) * 256 + r] = *m;
      }
    }
    byte_pair_merges_ = std::move(table);
  }
}

const BytePairModel::MergeSlot* BytePairModel::find_merge(int32_t left, int32_t right) const {
  uint64_t key = pair_key(left, right);
  if (!byte_pair_merges_.empty() && left < 256 && right < 256 && left >= 0 && right >= 0) {
    const MergeSlot& slot = byte_pair_merges_[static_cast<std::size_t>(left) * 256 + right];
    if (slot.key == key) return &slot;
  }
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
  if (bytes.size() == 1) {
    int32_t id = byte_token_[static_cast<uint8_t>(bytes[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  Scratch::CachedPiece* slot = nullptr;
  uint64_t hash = 0;
  if (bytes.size() <= kCachedPieceBytes) {
    if (scratch.cache.empty()) scratch.cache.assign(kCacheSlots, Scratch::CachedPiece{});
    hash = hash_bytes(bytes);
    slot = &scratch.cache[hash & (kCacheSlots - 1)];
    if (slot->hash == hash && slot->length == bytes.size() && bytes.compare(0, bytes.size(), slot->bytes, slot->length) == 0) {
      out.insert(out.end(), slot->ids, slot->ids + slot->n_ids);
      return;
    }
  }
  std::size_t first = out.size();
  int32_t whole = ignore_merges_ ? find_id(bytes_to_id_, bytes) : -1;
  if (whole >= 0) out.push_back(whole);
  else merge_symbols(bytes, scratch, out);
  std::size_t n_ids = out.size() - first;
  if (slot != nullptr && n_ids <= kCachedPieceIds) {
    slot->hash = hash;
    slot->length = static_cast<uint8_t>(bytes.size());
    slot->n_ids = static_cast<uint8_t>(n_ids);
    std::copy(bytes.begin(), bytes.end(), slot->bytes);
    std::copy(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(), slot->ids);
  }
}

void BytePairModel::push_candidate(Scratch& scratch, int32_t left) const {
  const auto& symbols = scratch.symbols;
  int32_t right = symbols[left].next;
  if (right < 0) return;
  const MergeSlot* merge = find_merge(symbols[left].id, symbols[right].id);
  if (merge == nullptr) return;
  scratch.heap.push_back({merge->rank, left, symbols[left].id, symbols[right].id, merge->merged});
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
    left.id = c.merged;
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
