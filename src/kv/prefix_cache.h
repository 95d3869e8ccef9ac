#pragma once
// Automatic prefix caching over a KvBlockPool. Blocks are reference counted: a full block whose contents are
// known can be published under a key = hash(parent key, its token ids); a later sequence whose prompt starts
// with the same tokens takes the same block (refcount + 1) instead of recomputing it. A published block whose
// last user lets go keeps its key in an LRU list and is evicted only when a fresh block is needed and the
// pool's free list is empty.
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/kv_cache.h"

namespace pensieve::kv {

class PrefixCache {
 public:
  // With `enabled` false nothing is ever published or found: plain refcounted allocation.
  PrefixCache(KvBlockPool& pool, bool enabled);

  // Key of a full block of kBlockTokens `tokens` following the block keyed `parent` (0 for the first block).
  static uint64_t block_key(uint64_t parent, std::span<const int32_t> tokens);

  // The cached block holding exactly (parent, tokens), now referenced once more; nullopt on a miss. Counts
  // one query, and one hit when found.
  std::optional<int32_t> acquire_cached(uint64_t parent, std::span<const int32_t> tokens);

  // A fresh private block (refcount 1): the free list first, else the least recently used idle cached block.
  std::optional<int32_t> allocate();

  // Marks a full, computed, private block as shareable under (parent, tokens). Does nothing when disabled or
  // when another block already holds that key (the block then stays private).
  void publish(int32_t block, uint64_t parent, std::span<const int32_t> tokens);

  // Drops one reference. At zero a published block becomes idle (kept, evictable); a private one goes back
  // to the pool. Throws std::invalid_argument for a block nobody references.
  void release(int32_t block);
  void release_all(std::vector<int32_t>& blocks);

  bool enabled() const { return enabled_; }
  int total_blocks() const { return pool_->n_blocks(); }
  // Blocks a new sequence could get now (free plus idle cached).
  int available_blocks() const { return pool_->free_blocks() + static_cast<int>(idle_.size()); }
  // Blocks referenced by at least one sequence.
  int used_blocks() const { return total_blocks() - available_blocks(); }
  int cached_blocks() const { return static_cast<int>(by_key_.size()); }
  int refcount(int32_t block) const { return info_[static_cast<size_t>(block)].refs; }

  uint64_t queries() const { return queries_; }
  uint64_t hits() const { return hits_; }

 private:
  struct BlockInfo {
    int refs = 0;
    bool published = false;
    uint64_t key = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;             // kept to rule out hash collisions
    std::list<int32_t>::iterator idle_pos;   // valid while published and refs == 0
  };
  void evict(int32_t block);

  KvBlockPool* pool_;
  bool enabled_;
  std::vector<BlockInfo> info_;
  std::unordered_map<uint64_t, int32_t> by_key_;
  std::list<int32_t> idle_;  // front: least recently used
  uint64_t queries_ = 0;
  uint64_t hits_ = 0;
};

}  // namespace pensieve::kv
