#pragma once
// One rank's part of a loaded model: the weights it holds (its slice, see tensor_split.h, or everything when
// it is the only rank), bound from the GGUF mmap and handed to its backend, its scratch buffers, and the
// forward pass as explicit backend ops. With several ranks, the partial sums after the attention output and
// FFN down projections are completed by an all-reduce, and the logits it leaves are its vocabulary slice.
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/communicator.h"
#include "gguf/gguf_file.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/model_config.h"
#include "model/tensor_split.h"

namespace pensieve::model {

struct LayerWeights {
  backend::Weight wq, wk, wv, wo, w_gate, w_up, w_down;
  backend::Buffer attn_norm, ffn_norm, q_norm, k_norm, bq, bk, bv;  // small vectors, as float, in the backend
};

// A 1-D tensor of the file as float; std::runtime_error (one line) when missing or not of n elements.
std::vector<float> read_vector(const gguf::GgufFile& file, const std::string& name, int64_t n);
// token_embd.weight, checked to be a matrix (its rows are the vocabulary).
const gguf::TensorInfo& embedding_tensor(const gguf::GgufFile& file);

class ModelShard {
 public:
  // `config` is the whole model's (vocab set); `comm` is null exactly when plan.world is 1. Throws
  // std::runtime_error (one line) for a missing or misshapen tensor, or a slice that would cut a block.
  ModelShard(const gguf::GgufFile& file, const ModelConfig& config, const ShardPlan& plan, backend::Backend& backend,
             backend::Communicator* comm);

  const ShardPlan& plan() const { return plan_; }
  backend::Backend& backend() { return backend_; }
  uint64_t weight_bytes() const;  // of the matrices this rank multiplies by

  // The forward pass of this rank over an already validated batch; `rope` is the step's table (host). Logits
  // of this rank's vocabulary slice go to `host_logits` (a host-memory backend of a single rank) or stay in
  // the backend for the reads below.
  void compute(const Batch& batch, std::span<const float> rope, kv::KvBlockPool& kv, float* host_logits);
  // Rows [first_row, first_row + n_rows) of the kept logits into out[i * out_stride + j], j < the slice width.
  void read_logits(int first_row, int n_rows, float* out, size_t out_stride);
  // The heads of the first n_rows kept logits rows, into host memory (ids within this rank's slice).
  void read_top_logits(int n_rows, backend::TopLogits* out);
  // Several ranks: every rank's heads of its first n_rows rows gathered onto every rank ([rank][row]); then
  // read_gathered_top_logits copies them to the host (from one rank).
  void gather_top_logits(int n_rows);
  void read_gathered_top_logits(int n_rows, backend::TopLogits* out);

 private:
  void bind_weights(const gguf::TensorInfo& embd);
  void prepare(backend::Weight& w, backend::Backend::WeightUse use);  // the backend's layout or memory for w
  backend::Buffer vector_in_backend(const std::string& name, int64_t n, Slice part);
  void reserve_rows(int n_rows, int n_logit_rows, bool keep_logits);
  void complete_partial_sums(float* x, size_t n);  // the all-reduce (nothing with one rank)
  void issue_ops(const backend::StepTables& step, kv::KvBlockPool& kv, float* host_logits);
  static uint64_t next_shard_id();

  const gguf::GgufFile& file_;
  const ModelConfig& config_;  // the whole model's
  ShardPlan plan_;             // plan_.local: this rank's heads, KV heads, FFN width and vocabulary
  backend::Backend& backend_;
  backend::Communicator* comm_;
  backend::Weight token_embd_, output_;
  backend::Buffer output_norm_;
  std::vector<LayerWeights> layers_;

  // Scratch in the backend's memory, grown to the largest batch seen and reused.
  int capacity_rows_ = 0;
  int capacity_logit_rows_ = 0;
  backend::Buffer x_, h_, q_, k_, v_, attn_, gate_, up_, selected_, logits_, top_, gathered_top_;
  std::vector<float> staging_;  // host: a slice of logits rows on their way into wider rows

  // What a backend's recorded steps (StepShape) depend on: this shard, and where its buffers and KV pool are.
  struct KvPlace {
    const std::byte* k = nullptr;
    const std::byte* v = nullptr;
    size_t block_bytes = 0;
    kv::KvType type = kv::KvType::F32;
    friend bool operator==(const KvPlace&, const KvPlace&) = default;
  };
  const uint64_t id_ = next_shard_id();
  uint64_t buffers_generation_ = 0;
  KvPlace last_kv_;
};

}  // namespace pensieve::model
