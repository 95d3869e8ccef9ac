#pragma once
// A loaded decoder-only transformer (llama, qwen2, qwen3): weights bound from the GGUF mmap and handed to the
// backend (which may keep them in its own memory), and forward(Batch) written as explicit backend ops over
// buffers the backend owns. Not thread-safe: one forward at a time.
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "gguf/gguf_file.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/model_config.h"

namespace pensieve::model {

struct LayerWeights {
  backend::Weight wq, wk, wv, wo, w_gate, w_up, w_down;
  backend::Buffer attn_norm, ffn_norm, q_norm, k_norm, bq, bk, bv;  // small vectors, as float, in the backend
};

class Model {
 public:
  // Throws std::runtime_error (one line) for an unreadable file, an unsupported architecture or tensor type,
  // or a missing/misshapen tensor.
  static std::unique_ptr<Model> load(const std::filesystem::path& path, backend::Backend& backend);

  const ModelConfig& config() const { return config_; }
  const gguf::GgufFile& file() const { return file_; }
  backend::Backend& backend() { return backend_; }
  uint64_t weight_bytes() const;  // bytes of every weight tensor a forward pass reads

  // A KV pool shaped for this model, its storage in the backend's memory.
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
  Model(gguf::GgufFile file, ModelConfig config, backend::Backend& backend);
  void bind_weights();
  void prepare(backend::Weight& w, backend::Backend::WeightUse use);  // the backend's layout or memory for w
  backend::Buffer vector_in_backend(const std::string& name, int64_t n);
  void compute(const Batch& batch, kv::KvBlockPool& kv, float* host_logits);  // null: into logits_
  void issue_ops(const backend::StepTables& step, kv::KvBlockPool& kv, float* host_logits);
  void reserve_rows(int n_rows, int n_logit_rows, bool keep_logits);

  gguf::GgufFile file_;
  ModelConfig config_;
  backend::Backend& backend_;
  backend::Weight token_embd_, output_;
  backend::Buffer output_norm_;
  std::vector<float> rope_freq_factors_;  // host: the rope table is computed on the host per step
  std::vector<LayerWeights> layers_;

  // Scratch in the backend's memory, grown to the largest batch seen and reused.
  int capacity_rows_ = 0;
  int capacity_logit_rows_ = 0;
  int n_logit_rows_ = 0;  // of the last run
  backend::Buffer x_, h_, q_, k_, v_, attn_, gate_, up_, selected_, logits_, top_;
  // What a backend's recorded steps (StepShape) depend on: this model, and where its buffers and KV pool are.
  const uint64_t id_ = next_model_id();
  uint64_t buffers_generation_ = 0;
  // (A pool made where a freed one was, but of another size, puts its V halves elsewhere.)
  struct KvPlace {
    const std::byte* k = nullptr;
    const std::byte* v = nullptr;
    size_t block_bytes = 0;
    kv::KvType type = kv::KvType::F32;
    friend bool operator==(const KvPlace&, const KvPlace&) = default;
  };
  KvPlace last_kv_;
  static uint64_t next_model_id();
  std::vector<float> rope_;  // host, uploaded with the step's tables
};

}  // namespace pensieve::model
