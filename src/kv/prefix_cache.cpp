#include "kv/prefix_cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace pensieve::kv {

namespace {

// splitmix64's finalizer: every input bit affects every output bit, so chained keys spread well.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

PrefixCache::PrefixCache(KvBlockPool& pool, bool enabled)
    : pool_(&pool), enabled_(enabled), info_(static_cast<size_t>(pool.n_blocks())) {}

uint64_t PrefixCache::block_key(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = mix(parent ^ 0x70656e7369657665ULL);
  for (int32_t t : tokens) h = mix(h ^ static_cast<uint32_t>(t));
  return h;
}

std::optional<int32_t> PrefixCache::acquire_cached(uint64_t parent, std::span<const int32_t> tokens) {
  if (!enabled_) return std::nullopt;
  ++queries_;
  const auto it = by_key_.find(block_key(parent, tokens));
  if (it == by_key_.end()) return std::nullopt;
  BlockInfo& b = info_[static_cast<size_t>(it->second)];
  if (b.parent != parent || !std::equal(b.tokens.begin(), b.tokens.end(), tokens.begin(), tokens.end())) {
    return std::nullopt;
  }
  if (b.refs == 0) idle_.erase(b.idle_pos);
  ++b.refs;
  ++hits_;
  return it->second;
}

std::optional<int32_t> PrefixCache::allocate() {
  std::optional<int32_t> block = pool_->allocate();
  if (!block) {
    if (idle_.empty()) return std::nullopt;
    block = idle_.front();
    evict(*block);
  }
  info_[static_cast<size_t>(*block)].refs = 1;
  return block;
}

void PrefixCache::evict(int32_t block) {
  BlockInfo& b = info_[static_cast<size_t>(block)];
  idle_.erase(b.idle_pos);
  by_key_.erase(b.key);
  b.published = false;
  b.tokens.clear();
}

void PrefixCache::publish(int32_t block, uint64_t parent, std::span<const int32_t> tokens) {
  BlockInfo& b = info_[static_cast<size_t>(block)];
  if (!enabled_ || b.published || b.refs <= 0) return;
  const uint64_t key = block_key(parent, tokens);
  if (!by_key_.emplace(key, block).second) return;
  b.published = true;
  b.key = key;
  b.parent = parent;
  b.tokens.assign(tokens.begin(), tokens.end());
}

void PrefixCache::release(int32_t block) {
  if (block < 0 || block >= pool_->n_blocks() || info_[static_cast<size_t>(block)].refs <= 0) {
    throw std::invalid_argument("KV block " + std::to_string(block) + " is not referenced");
  }
  BlockInfo& b = info_[static_cast<size_t>(block)];
  if (--b.refs > 0) return;
  if (b.published) {
    b.idle_pos = idle_.insert(idle_.end(), block);
  } else {
    pool_->release(block);
  }
}

void PrefixCache::release_all(std::vector<int32_t>& blocks) {
  // Tail first: a sequence's later blocks then sit nearer the eviction end than the prefix they extend,
  // which is useless to keep without its parents.
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) release(*it);
  blocks.clear();
}

}  // namespace pensieve::kv
