#pragma once
// Megatron-style tensor parallelism: which part of each weight rank r of N holds. Attention is split by heads
// (the q/k/v rows of rank r's query and KV heads, with their biases, and the o_proj columns of those heads),
// the FFN by its hidden width (gate/up rows, down columns), the output matrix by vocabulary rows. A column
// split leaves each rank a partial sum of the layer's output, which one all-reduce completes: one after the
// attention output projection, one after the FFN down projection. Norms and the embedding (looked up, one row
// per token) are replicated.
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/model_config.h"

namespace pensieve::model {

struct Slice {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

struct ShardPlan {
  int rank = 0;
  int world = 1;
  Slice heads, kv_heads, ffn, vocab;
  // The shape this rank computes with: heads, KV heads, FFN width and vocabulary of its slices.
  ModelConfig local;
};

// Rank `rank` of `world` for a model of `config` (config.vocab set). Throws std::runtime_error (one line) when
// `world` does not divide the attention heads, the KV heads or the FFN width.
ShardPlan plan_shard(const ModelConfig& config, int rank, int world);

// Rows [rows.begin, rows.end) of `w`: a view of the same bytes (rows are contiguous).
backend::Weight row_slice(const backend::Weight& w, Slice rows);
// Columns [cols.begin, cols.end) of every row of `w`, copied into host memory `w.owner` keeps. The slice
// must start and end on the type's block boundaries (32 elements for Q8_0/Q4_0, 256 for the K-quants);
// std::runtime_error (one line, naming the tensor and the world size) otherwise.
backend::Weight column_slice(const backend::Weight& w, Slice cols, int world);
// Elements [s.begin, s.end) of a vector.
std::vector<float> vector_slice(std::span<const float> v, Slice s);

}  // namespace pensieve::model
