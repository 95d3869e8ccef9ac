#include "model/tensor_split.h"

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "gguf/ggml_type.h"

namespace pensieve::model {

namespace {

Slice even_part(int64_t n, int rank, int world) { return {n * rank / world, n * (rank + 1) / world}; }

void require_divides(int64_t n, int world, const char* what) {
  if (n % world != 0) {
    throw std::runtime_error("--tensor-parallel " + std::to_string(world) + " does not divide the model's " +
                             std::to_string(n) + " " + what);
  }
}

}  // namespace

ShardPlan plan_shard(const ModelConfig& c, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world) {
    throw std::runtime_error("tensor parallel: rank " + std::to_string(rank) + " of " + std::to_string(world));
  }
  require_divides(c.n_heads, world, "attention heads");
  require_divides(c.n_kv_heads, world, "KV heads");
  require_divides(c.ffn_dim, world, "FFN width");
  if (c.vocab < world) throw std::runtime_error("--tensor-parallel " + std::to_string(world) + " exceeds the vocabulary");
  ShardPlan p;
  p.rank = rank;
  p.world = world;
  p.heads = even_part(c.n_heads, rank, world);
  p.kv_heads = even_part(c.n_kv_heads, rank, world);
  p.ffn = even_part(c.ffn_dim, rank, world);
  // The vocabulary need not divide (qwen2's padded 640 rows, 151936 and such): output rows split anywhere.
  p.vocab = even_part(c.vocab, rank, world);
  p.local = c;
  p.local.n_heads = static_cast<int>(p.heads.size());
  p.local.n_kv_heads = static_cast<int>(p.kv_heads.size());
  p.local.ffn_dim = static_cast<int>(p.ffn.size());
  p.local.vocab = static_cast<int>(p.vocab.size());
  return p;
}

backend::Weight row_slice(const backend::Weight& w, Slice rows) {
  backend::Weight out = w;
  out.rows = rows.size();
  out.data = w.data.subspan(static_cast<size_t>(rows.begin) * w.row_bytes, static_cast<size_t>(rows.size()) * w.row_bytes);
  return out;
}

backend::Weight column_slice(const backend::Weight& w, Slice cols, int world) {
  const auto skip = gguf::bytes_for(w.type_id, static_cast<uint64_t>(cols.begin));
  const auto keep = gguf::bytes_for(w.type_id, static_cast<uint64_t>(cols.size()));
  if (!skip || !keep) {
    const std::optional<gguf::TypeTraits> traits = gguf::type_traits(w.type_id);
    throw std::runtime_error("--tensor-parallel " + std::to_string(world) + ": " + w.name + " (" +
                             std::string(gguf::type_name(w.type_id)) + ", blocks of " +
                             std::to_string(traits ? traits->block_elements : 0) + ") would split into slices of " +
                             std::to_string(cols.size()) + " columns, which cut its blocks");
  }
  auto copy = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(w.rows) * *keep);
  for (int64_t r = 0; r < w.rows; ++r) {
    std::memcpy(copy->data() + static_cast<size_t>(r) * *keep, w.data.data() + static_cast<size_t>(r) * w.row_bytes + *skip,
                static_cast<size_t>(*keep));
  }
  backend::Weight out = w;
  out.cols = cols.size();
  out.row_bytes = static_cast<size_t>(*keep);
  out.data = std::span<const std::byte>(copy->data(), copy->size());
  out.owner = std::move(copy);
  return out;
}

std::vector<float> vector_slice(std::span<const float> v, Slice s) {
  const auto first = v.begin() + s.begin;
  return {first, first + s.size()};
}

}  // namespace pensieve::model
