// Prefix cache: refcounted sharing of published blocks, idle blocks kept until space is needed (LRU),
// private blocks returned to the pool at once, keys that cannot collide into a wrong block.
#include <gtest/gtest.h>

#include <numeric>

#include "kv/prefix_cache.h"

namespace pensieve::kv {
namespace {

KvBlockPool small_pool(int blocks) { return KvBlockPool(KvShape{1, 1, 4}, KvType::F32, blocks); }

std::vector<int32_t> block_tokens(int32_t first) {
  std::vector<int32_t> t(kBlockTokens);
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(PrefixCache, PrivateBlocksGoBackToThePoolAtOnce) {
  auto pool = small_pool(3);
  PrefixCache cache(pool, true);
  std::vector<int32_t> blocks{*cache.allocate(), *cache.allocate()};
  EXPECT_EQ(cache.used_blocks(), 2);
  EXPECT_EQ(pool.free_blocks(), 1);
  cache.release_all(blocks);
  EXPECT_TRUE(blocks.empty());
  EXPECT_EQ(pool.free_blocks(), 3);
  EXPECT_EQ(cache.used_blocks(), 0);
}

TEST(PrefixCache, PublishedBlockIsSharedAndKeptWhenIdle) {
  auto pool = small_pool(4);
  PrefixCache cache(pool, true);
  const auto tokens = block_tokens(100);
  const int32_t b = *cache.allocate();
  cache.publish(b, 0, tokens);

  const auto again = cache.acquire_cached(0, tokens);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, b);
  EXPECT_EQ(cache.refcount(b), 2);
  cache.release(b);
  cache.release(b);
  // Idle but still cached: not in the pool's free list, yet available to anyone who needs a block.
  EXPECT_EQ(pool.free_blocks(), 3);
  EXPECT_EQ(cache.available_blocks(), 4);
  EXPECT_EQ(cache.used_blocks(), 0);
  const auto revived = cache.acquire_cached(0, tokens);
  ASSERT_TRUE(revived);
  EXPECT_EQ(*revived, b);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.queries(), 2u);
}

TEST(PrefixCache, KeyDependsOnParentAndEveryToken) {
  auto pool = small_pool(4);
  PrefixCache cache(pool, true);
  const auto tokens = block_tokens(7);
  const int32_t b = *cache.allocate();
  cache.publish(b, 0, tokens);
  EXPECT_FALSE(cache.acquire_cached(12345, tokens));
  auto changed = tokens;
  changed.back() += 1;
  EXPECT_FALSE(cache.acquire_cached(0, changed));
  EXPECT_NE(PrefixCache::block_key(0, tokens), PrefixCache::block_key(0, changed));
  EXPECT_NE(PrefixCache::block_key(0, tokens), PrefixCache::block_key(1, tokens));
}

TEST(PrefixCache, IdleBlocksAreEvictedLeastRecentlyUsedFirstOnlyWhenNeeded) {
  auto pool = small_pool(3);
  PrefixCache cache(pool, true);
  const auto t0 = block_tokens(0), t1 = block_tokens(50), t2 = block_tokens(90);
  const int32_t b0 = *cache.allocate(), b1 = *cache.allocate(), b2 = *cache.allocate();
  cache.publish(b0, 0, t0);
  cache.publish(b1, 0, t1);
  cache.publish(b2, 0, t2);
  cache.release(b1);  // idle order: b1, b0, b2
  cache.release(b0);
  cache.release(b2);
  EXPECT_EQ(cache.cached_blocks(), 3);

  const auto fresh = cache.allocate();  // pool empty: evicts b1
  ASSERT_TRUE(fresh);
  EXPECT_EQ(*fresh, b1);
  EXPECT_FALSE(cache.acquire_cached(0, t1));
  EXPECT_TRUE(cache.acquire_cached(0, t0));  // b0 in use again: no longer evictable
  const auto next = cache.allocate();
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, b2);
  EXPECT_FALSE(cache.allocate());  // everything referenced
}

TEST(PrefixCache, ADuplicateKeyStaysPrivate) {
  auto pool = small_pool(2);
  PrefixCache cache(pool, true);
  const auto tokens = block_tokens(3);
  const int32_t a = *cache.allocate(), b = *cache.allocate();
  cache.publish(a, 0, tokens);
  cache.publish(b, 0, tokens);
  cache.release(b);
  EXPECT_EQ(pool.free_blocks(), 1);  // b was never published, so it went straight back
  EXPECT_EQ(*cache.acquire_cached(0, tokens), a);
}

TEST(PrefixCache, DisabledCacheNeverFindsAnything) {
  auto pool = small_pool(2);
  PrefixCache cache(pool, false);
  const auto tokens = block_tokens(3);
  const int32_t a = *cache.allocate();
  cache.publish(a, 0, tokens);
  EXPECT_FALSE(cache.acquire_cached(0, tokens));
  cache.release(a);
  EXPECT_EQ(pool.free_blocks(), 2);
}

TEST(PrefixCache, ReleasingAnUnreferencedBlockThrows) {
  auto pool = small_pool(2);
  PrefixCache cache(pool, true);
  EXPECT_THROW(cache.release(0), std::invalid_argument);
  const int32_t a = *cache.allocate();
  cache.release(a);
  EXPECT_THROW(cache.release(a), std::invalid_argument);
  EXPECT_THROW(cache.release(7), std::invalid_argument);
}

}  // namespace
}  // namespace pensieve::kv
