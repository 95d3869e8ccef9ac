#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

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

// Tensor parallel: each shard holds its share of the KV heads in storage from its own allocator.
TEST(KvBlockPool, ShardsSplitTheHeadsEachInItsOwnStorage) {
  std::vector<size_t> asked;
  const auto allocator = [&asked](size_t bytes) {
    asked.push_back(bytes);
    auto storage = std::make_shared<std::byte[]>(bytes);
    return std::shared_ptr<std::byte>(storage, storage.get());
  };
  const std::vector<KvBlockPool::StorageAllocator> shards(2, allocator);
  KvBlockPool pool({2, 4, 64}, KvType::F16, 10, shards);
  EXPECT_EQ(pool.n_shards(), 2);
  EXPECT_EQ(pool.shape().n_kv_heads, 4);        // the whole model's
  EXPECT_EQ(pool.shard_shape().n_kv_heads, 2);  // each shard's
  EXPECT_EQ(pool.block_bytes(), 16u * 2 * 64 * 2);
  EXPECT_EQ(asked, (std::vector<size_t>{2u * 2 * 10 * pool.block_bytes(), 2u * 2 * 10 * pool.block_bytes()}));
  EXPECT_EQ(pool.total_bytes(), asked[0] + asked[1]);
  // Shard 1's layer 0 is not inside shard 0's storage, and a block id names the same block in both.
  EXPECT_TRUE(pool.k_base(0, 1) < pool.k_base(0, 0) || pool.k_base(0, 1) >= pool.k_base(0, 0) + asked[0]);
  EXPECT_EQ(pool.v_base(1, 1) - pool.k_base(1, 1), static_cast<std::ptrdiff_t>(10 * pool.block_bytes()));
  EXPECT_THROW(KvBlockPool({2, 4, 64}, KvType::F16, 10, std::vector<KvBlockPool::StorageAllocator>(3, allocator)),
               std::invalid_argument);
}

TEST(KvBlockPool, Q8_0StoresEach32ElementsIn34Bytes) {
  // 4 heads x 64 = 256 elements per token row: 8 blocks of (2-byte scale + 32 int8).
  KvBlockPool q8({2, 4, 64}, KvType::Q8_0, 10);
  EXPECT_EQ(q8.block_bytes(), 16u * 8 * 34);
  EXPECT_EQ(q8.total_bytes(), 2u * 2 * 10 * q8.block_bytes());
  EXPECT_EQ(q8.v_base(0) - q8.k_base(0), static_cast<std::ptrdiff_t>(10 * q8.block_bytes()));
  EXPECT_EQ(kv_row_bytes(KvType::Q8_0, 256), 8u * 34);
  EXPECT_EQ(kv_row_bytes(KvType::F16, 256), 512u);
  EXPECT_EQ(kv_row_bytes(KvType::F32, 256), 1024u);
}

TEST(KvBlockPool, Q8_0RefusesHeadsThatAreNotWholeBlocks) {
  // 2 heads x 48 is 96 = 3 blocks per row, but a block would straddle two heads.
  try {
    KvBlockPool pool({1, 2, 48}, KvType::Q8_0, 4);
    FAIL() << "a q8_0 pool with head_dim 48 was created";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("48"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("f16"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(KvBlockPool({1, 2, 48}, KvType::F16, 4));
  EXPECT_FALSE(kv_type_unsupported_reason(KvType::Q8_0, 48).empty());
  EXPECT_TRUE(kv_type_unsupported_reason(KvType::Q8_0, 64).empty());
  EXPECT_THROW(kv_row_bytes(KvType::Q8_0, 40), std::invalid_argument);
}

TEST(KvType, NamesRoundTrip) {
  for (KvType t : {KvType::F32, KvType::F16, KvType::Q8_0}) EXPECT_EQ(parse_kv_type(kv_type_name(t)), t);
  EXPECT_EQ(parse_kv_type("q8_0"), KvType::Q8_0);
  EXPECT_FALSE(parse_kv_type("q4_0").has_value());
  EXPECT_FALSE(parse_kv_type("F16").has_value());
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
