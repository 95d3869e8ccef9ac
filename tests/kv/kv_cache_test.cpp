#include <gtest/gtest.h>

#include <set>

#include "kv/kv_cache.h"

namespace pensieve::kv {
namespace {

TEST(KvBlockPool, SizesFollowShapeAndType) {
  KvBlockPool f16({2, 4, 64}, KvType::F16, 10);
  EXPECT_EQ(f16.block_bytes(), 16u * 4 * 64 * 2);
  EXPECT_EQ(f16.total_bytes(), 2u * 2 * 10 * f16.block_bytes());
  KvBlockPool f32({2, 4, 64}, KvType::F32, 10);
  EXPECT_EQ(f32.block_bytes(), 2 * f16.block_bytes());
  // K and V of every layer are disjoint regions.
  EXPECT_EQ(f16.v_base(0) - f16.k_base(0), static_cast<std::ptrdiff_t>(10 * f16.block_bytes()));
  EXPECT_EQ(f16.k_base(1) - f16.k_base(0), static_cast<std::ptrdiff_t>(20 * f16.block_bytes()));
}

TEST(KvBlockPool, AllocatesEachBlockOnceUntilReleased) {
  KvBlockPool pool({1, 1, 8}, KvType::F32, 4);
  std::set<int32_t> got;
  for (int i = 0; i < 4; ++i) {
    auto b = pool.allocate();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(got.insert(*b).second);
  }
  EXPECT_FALSE(pool.allocate().has_value());
  pool.release(2);
  EXPECT_EQ(pool.allocate(), std::optional<int32_t>(2));
}

TEST(KvBlockPool, ReleasingAFreeOrForeignBlockThrows) {
  KvBlockPool pool({1, 1, 8}, KvType::F32, 2);
  EXPECT_THROW(pool.release(0), std::invalid_argument);
  EXPECT_THROW(pool.release(7), std::invalid_argument);
  auto b = pool.allocate();
  pool.release(*b);
  EXPECT_THROW(pool.release(*b), std::invalid_argument);
}

TEST(BlockTable, ReservesWholeBlocksAndFailsWithoutPartialAllocation) {
  KvBlockPool pool({1, 1, 8}, KvType::F16, 3);
  BlockTable t;
  EXPECT_TRUE(t.reserve(pool, 1));
  EXPECT_EQ(t.blocks().size(), 1u);
  EXPECT_TRUE(t.reserve(pool, 16));
  EXPECT_EQ(t.blocks().size(), 1u);
  EXPECT_TRUE(t.reserve(pool, 17));
  EXPECT_EQ(t.blocks().size(), 2u);
  EXPECT_EQ(t.capacity_tokens(), 32);
  EXPECT_FALSE(t.reserve(pool, 16 * 4));  // needs 2 more, 1 free
  EXPECT_EQ(pool.free_blocks(), 1);
  t.release_all(pool);
  EXPECT_EQ(pool.free_blocks(), 3);
  EXPECT_TRUE(t.blocks().empty());
}

}  // namespace
}  // namespace pensieve::kv
