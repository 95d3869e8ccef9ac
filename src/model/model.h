#pragma once
// A loaded decoder-only transformer (llama, qwen2, qwen3): weights bound from the GGUF mmap and handed to the
// backend (which may keep them in its own memory), and forward(Batch) written as explicit backend ops over
// buffers the backend owns (model_shard.h). Loaded over several backends it is tensor parallel: each rank
// holds a slice of every layer (tensor_split.h) and runs on its own thread, and the logits are put together
// on the host. Not thread-safe: one forward at a time.
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "backend/communicator.h"
#include "gguf/gguf_file.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/model_config.h"
#include "model/model_shard.h"
#include "model/rank_threads.h"

namespace pensieve::model {

class Model {
 public:
  // Throws std::runtime_error (one line) for an unreadable file, an unsupported architecture or tensor type,
  // or a missing/misshapen tensor.
  static std::unique_ptr<Model> load(const std::filesystem::path& path, backend::Backend& backend);
  // Tensor parallel over ranks.size() backends (rank r on ranks[r]; one rank is the plain load above). Also
  // throws (one line) when the ranks do not divide the heads, KV heads or FFN width, a split would cut a
  // quantized block, or the ranks cannot communicate (backend::make_communicators).
  static std::unique_ptr<Model> load(const std::filesystem::path& path, std::span<backend::Backend* const> ranks);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const gguf::GgufFile& file() const { return file_; }
  backend::Backend& backend() { return shards_.front()->backend(); }  // rank 0's
  int tensor_parallel() const { return static_cast<int>(shards_.size()); }
  backend::Backend& rank_backend(int rank) { return shards_.at(static_cast<size_t>(rank))->backend(); }
  uint64_t weight_bytes() const;  // bytes of every weight tensor a forward pass reads (over all ranks)

  // A KV pool shaped for this model, its storage in the backend's memory (each rank's heads in its own).
  kv::KvBlockPool make_kv_pool(kv::KvType type, int n_blocks) const;

  // Runs the batch; writes logits [batch.logit_rows.size()][vocab] into `logits` (host memory).
  void forward(const Batch& batch, kv::KvBlockPool& kv, std::span<float> logits);
  // Runs the batch and keeps its logits in the backend, for the reads below (valid until the next run).
  // A sampler that needs only the head of a row reads that instead of the row (a GPU then copies ~0.5 KB
  // per sequence instead of the vocabulary).
  void run(const Batch& batch, kv::KvBlockPool& kv);
  void read_logits(int first_row, std::span<float> out);  // rows first_row.. of the last run, whole
  void read_top_logits(std::span<backend::TopLogits> out);  // one per logits row of the last run

 private:
  Model(gguf::GgufFile file, ModelConfig config);
  void load_shards(std::span<backend::Backend* const> ranks);
  void compute(const Batch& batch, kv::KvBlockPool& kv, float* host_logits);  // null: kept in the backend
  // Runs job(rank) on every rank's thread (several ranks) and waits; a failing rank stops the group.
  void on_every_rank(const std::function<void(int)>& job);

  gguf::GgufFile file_;
  ModelConfig config_;
  std::vector<float> rope_freq_factors_;  // host: the rope table is computed on the host per step
  std::vector<float> rope_;               // host, uploaded with the step's tables by every rank
  int n_logit_rows_ = 0;                  // of the last run
  std::vector<std::unique_ptr<backend::Communicator>> comms_;  // empty with one rank
  std::vector<std::unique_ptr<ModelShard>> shards_;
  std::unique_ptr<RankThreads> threads_;  // null with one rank: it runs on the caller's thread
  std::vector<backend::TopLogits> gathered_top_;  // host: [rank][row] heads before the merge
};

// The heads of whole rows from the heads of their vocabulary slices: per_rank is [rank][row] (n_rows rows a
// rank, ids within the slice), slice_begin[r] the first vocabulary id of rank r's slice. Exact for the ids
// and logits (the best kTopLogits of a row are among the best kTopLogits of its slices); the log-sum-exp is
// that of the slices' log-sum-exps.
void merge_top_logits(std::span<const backend::TopLogits> per_rank, std::span<const int64_t> slice_begin, int n_rows,
                      int vocab, std::span<backend::TopLogits> out);

}  // namespace pensieve::model
