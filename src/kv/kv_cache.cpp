#include "kv/kv_cache.h"

#include <stdexcept>
#include <string>

namespace pensieve::kv {

size_t kv_row_bytes(KvType type, int row_elements) {
  const auto n = static_cast<size_t>(row_elements);
  switch (type) {
    case KvType::F32: return n * 4;
    case KvType::F16: return n * 2;
    case KvType::Q8_0:
      if (row_elements % kQ8_0BlockElements != 0) {
        throw std::invalid_argument("a q8_0 KV row needs a multiple of 32 elements, not " + std::to_string(row_elements));
      }
      return n / kQ8_0BlockElements * kQ8_0BlockBytes;
  }
  throw std::invalid_argument("unknown KV type");
}

const char* kv_type_name(KvType type) {
  switch (type) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::Q8_0: return "q8_0";
  }
  return "?";
}

std::optional<KvType> parse_kv_type(std::string_view name) {
  for (KvType t : {KvType::F32, KvType::F16, KvType::Q8_0}) {
    if (name == kv_type_name(t)) return t;
  }
  return std::nullopt;
}

std::string kv_type_unsupported_reason(KvType type, int head_dim) {
  if (type == KvType::Q8_0 && head_dim % kQ8_0BlockElements != 0) {
    return "a q8_0 KV cache needs a head size that is a multiple of 32; this model's is " + std::to_string(head_dim) +
           " (use f16)";
  }
  return {};
}

KvBlockPool::KvBlockPool(KvShape shape, KvType type, int n_blocks)
    : KvBlockPool(shape, type, n_blocks, [](size_t bytes) {
        auto storage = std::make_shared<std::byte[]>(bytes);  // value-initialized: zeros
        return std::shared_ptr<std::byte>(storage, storage.get());
      }) {}

KvBlockPool::KvBlockPool(KvShape shape, KvType type, int n_blocks, const StorageAllocator& allocate_storage)
    : KvBlockPool(shape, type, n_blocks, std::span<const StorageAllocator>(&allocate_storage, 1)) {}

KvBlockPool::KvBlockPool(KvShape shape, KvType type, int n_blocks, std::span<const StorageAllocator> shard_allocators)
    : shape_(shape), type_(type), n_blocks_(n_blocks) {
  if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || n_blocks <= 0) {
    throw std::invalid_argument("KV pool needs positive layers, heads, head size and block count");
  }
  if (const std::string why = kv_type_unsupported_reason(type, shape.head_dim); !why.empty()) {
    throw std::invalid_argument(why);
  }
  const auto shards = static_cast<int>(shard_allocators.size());
  if (shards < 1 || shape.n_kv_heads % shards != 0) {
    throw std::invalid_argument("KV pool: " + std::to_string(shape.n_kv_heads) + " KV heads do not split into " +
                                std::to_string(shards) + " shards");
  }
  storage_.resize(static_cast<size_t>(shards));  // shard_shape() divides by it from here on
  storage_bytes_ = 2 * block_bytes() * static_cast<size_t>(n_blocks) * static_cast<size_t>(shape.n_layers);
  for (size_t s = 0; s < storage_.size(); ++s) {
    storage_[s] = shard_allocators[s](storage_bytes_);
    if (!storage_[s]) throw std::runtime_error("KV pool: no storage for " + std::to_string(storage_bytes_) + " bytes");
  }
  free_.reserve(static_cast<size_t>(n_blocks));
  // Pop from the back, so hand out low ids first (easier to read in tests and dumps).
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
  allocated_.assign(static_cast<size_t>(n_blocks), 0);
}

size_t KvBlockPool::block_bytes() const {
  return static_cast<size_t>(kBlockTokens) * kv_row_bytes(type_, shard_shape().kv_row_elements());
}

std::optional<int32_t> KvBlockPool::allocate() {
  if (free_.empty()) return std::nullopt;
  int32_t b = free_.back();
  free_.pop_back();
  allocated_[static_cast<size_t>(b)] = 1;
  return b;
}

void KvBlockPool::release(int32_t block) {
  if (block < 0 || block >= n_blocks_ || !allocated_[static_cast<size_t>(block)]) {
    throw std::invalid_argument("KV block " + std::to_string(block) + " is not allocated");
  }
  allocated_[static_cast<size_t>(block)] = 0;
  free_.push_back(block);
}

bool BlockTable::reserve(KvBlockPool& pool, int n_tokens) {
  const size_t needed = static_cast<size_t>((n_tokens + kBlockTokens - 1) / kBlockTokens);
  if (needed <= blocks_.size()) return true;
  if (needed - blocks_.size() > static_cast<size_t>(pool.free_blocks())) return false;
  while (blocks_.size() < needed) blocks_.push_back(*pool.allocate());
  return true;
}

void BlockTable::release_all(KvBlockPool& pool) {
  for (int32_t b : blocks_) pool.release(b);
  blocks_.clear();
}

}  // namespace pensieve::kv
