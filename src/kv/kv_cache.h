#pragma once
// Paged KV cache: one pool of fixed-size blocks per model, shared by all sequences. A sequence owns a block
// table (block ids in position order); position p of that sequence lives in block table[p / kBlockTokens],
// slot p % kBlockTokens. The storage of one block, per layer, is [kBlockTokens][n_kv_heads][head_dim] for K
// and the same for V, in F32, F16 or Q8_0 (each token's row of n_kv_heads * head_dim as GGML Q8_0 blocks:
// an fp16 scale and 32 int8, 34 bytes per 32 elements).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::kv {

inline constexpr int kBlockTokens = 16;

enum class KvType { F32, F16, Q8_0 };
inline constexpr int kQ8_0BlockElements = 32;
inline constexpr size_t kQ8_0BlockBytes = 34;

// Bytes one token's K (or V) row of `row_elements` takes in one layer; for Q8_0 row_elements must be a whole
// number of blocks (std::invalid_argument otherwise).
size_t kv_row_bytes(KvType type, int row_elements);
const char* kv_type_name(KvType type);                   // "f32", "f16", "q8_0"
std::optional<KvType> parse_kv_type(std::string_view name);  // the names above; nullopt for anything else
// Empty when a cache of `type` can hold heads of `head_dim`, else why not. Q8_0 needs head_dim % 32 == 0:
// attention dequantizes one head's blocks at a time, so a block must not straddle two heads.
std::string kv_type_unsupported_reason(KvType type, int head_dim);

struct KvShape {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int kv_row_elements() const { return n_kv_heads * head_dim; }  // one token's K (or V) in one layer
};

// Fixed pool of blocks; allocation is a free-list pop, nothing grows after construction. The block tables
// and free list live on the host; the storage may live wherever its allocator put it (a GPU's memory, for
// one): the pool never reads or writes it.
class KvBlockPool {
 public:
  // Allocates `bytes` of zeroed storage, owned by the returned pointer.
  using StorageAllocator = std::function<std::shared_ptr<std::byte>(size_t bytes)>;

  KvBlockPool(KvShape shape, KvType type, int n_blocks);  // storage in host memory
  KvBlockPool(KvShape shape, KvType type, int n_blocks, const StorageAllocator& allocate_storage);
  // Tensor parallel: the KV heads split evenly over one shard per allocator (shard s holds heads
  // [s * n_kv_heads / shards, (s + 1) * n_kv_heads / shards), in its own storage, e.g. its GPU's); one block id
  // names the same block in every shard. Throws std::invalid_argument when the shards do not divide the heads.
  KvBlockPool(KvShape shape, KvType type, int n_blocks, std::span<const StorageAllocator> shard_allocators);

  const KvShape& shape() const { return shape_; }  // the whole model's
  int n_shards() const { return static_cast<int>(storage_.size()); }
  KvShape shard_shape() const { return {shape_.n_layers, shape_.n_kv_heads / n_shards(), shape_.head_dim}; }
  KvType type() const { return type_; }
  int n_blocks() const { return n_blocks_; }
  int free_blocks() const { return static_cast<int>(free_.size()); }

  std::optional<int32_t> allocate();   // nullopt when the pool is exhausted
  void release(int32_t block);         // throws std::invalid_argument for an id not currently allocated

  // Start of layer `layer`'s K (or V) storage in `shard`: block b begins at base + b * block_bytes().
  std::byte* k_base(int layer, int shard = 0) { return shard_storage(shard) + layer_offset(layer); }
  std::byte* v_base(int layer, int shard = 0) { return shard_storage(shard) + layer_offset(layer) + layer_half_bytes(); }
  size_t block_bytes() const;          // one block's K (or V) of one layer, in one shard
  size_t total_bytes() const { return storage_bytes_ * storage_.size(); }  // every shard's

 private:
  size_t layer_half_bytes() const { return block_bytes() * static_cast<size_t>(n_blocks_); }
  size_t layer_offset(int layer) const { return 2 * layer_half_bytes() * static_cast<size_t>(layer); }
  std::byte* shard_storage(int shard) { return storage_.at(static_cast<size_t>(shard)).get(); }

  KvShape shape_;
  KvType type_;
  int n_blocks_;
  std::vector<std::shared_ptr<std::byte>> storage_;  // one per shard
  size_t storage_bytes_ = 0;                         // of one shard
  std::vector<int32_t> free_;
  std::vector<uint8_t> allocated_;
};

// The blocks of one sequence, grown as its length grows.
class BlockTable {
 public:
  // Makes sure positions [0, n_tokens) have blocks; false (and nothing allocated) when the pool cannot.
  bool reserve(KvBlockPool& pool, int n_tokens);
  void release_all(KvBlockPool& pool);
  std::span<const int32_t> blocks() const { return blocks_; }
  int capacity_tokens() const { return static_cast<int>(blocks_.size()) * kBlockTokens; }

 private:
  std::vector<int32_t> blocks_;
};

}  // namespace pensieve::kv
