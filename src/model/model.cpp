#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace pensieve::model {

std::unique_ptr<Model> Model::load(const std::filesystem::path& path, backend::Backend& backend) {
  backend::Backend* const ranks[] = {&backend};
  return load(path, ranks);
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& path, std::span<backend::Backend* const> ranks) {
  if (ranks.empty()) throw std::invalid_argument("Model::load: no backend");
  gguf::GgufFile file = gguf::GgufFile::open(path);
  ModelConfig config = read_model_config(file);
  config.vocab = static_cast<int>(embedding_tensor(file).shape[1]);
  std::unique_ptr<Model> m(new Model(std::move(file), config));
  m->load_shards(ranks);
  return m;
}

Model::Model(gguf::GgufFile file, ModelConfig config) : file_(std::move(file)), config_(std::move(config)) {}

Model::~Model() = default;

void Model::load_shards(std::span<backend::Backend* const> ranks) {
  const int world = static_cast<int>(ranks.size());
  std::vector<ShardPlan> plans;
  for (int r = 0; r < world; ++r) plans.push_back(plan_shard(config_, r, world));  // shapes checked before any setup
  if (file_.find_tensor("rope_freqs.weight")) rope_freq_factors_ = read_vector(file_, "rope_freqs.weight", config_.n_rot / 2);
  if (world > 1) comms_ = backend::make_communicators(ranks);
  for (int r = 0; r < world; ++r) {
    backend::Communicator* comm = world > 1 ? comms_[static_cast<size_t>(r)].get() : nullptr;
    shards_.push_back(std::make_unique<ModelShard>(file_, config_, plans[static_cast<size_t>(r)], *ranks[static_cast<size_t>(r)], comm));
  }
  if (world > 1) threads_ = std::make_unique<RankThreads>(world);
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& s : shards_) total += s->weight_bytes();
  return total;
}

kv::KvBlockPool Model::make_kv_pool(kv::KvType type, int n_blocks) const {
  const kv::KvShape shape{config_.n_layers, config_.n_kv_heads, config_.head_dim};
  std::vector<kv::KvBlockPool::StorageAllocator> allocators;
  for (const auto& s : shards_) {
    backend::Backend* be = &s->backend();
    allocators.emplace_back([be](size_t bytes) { return be->allocate(bytes).memory; });
  }
  return kv::KvBlockPool(shape, type, n_blocks, allocators);
}

void Model::on_every_rank(const std::function<void(int)>& job) {
  threads_->run(job, [this] {
    for (const auto& c : comms_) c->abort();
  });
}

void Model::forward(const Batch& batch, kv::KvBlockPool& kv, std::span<float> logits) {
  const size_t n_out = batch.logit_rows.size();
  if (logits.size() != n_out * static_cast<size_t>(config_.vocab)) {
    throw std::invalid_argument("forward: logits buffer holds " + std::to_string(logits.size()) + " floats, need " +
                                std::to_string(n_out * static_cast<size_t>(config_.vocab)));
  }
  if (backend().host_memory() && shards_.size() == 1) {
    compute(batch, kv, logits.data());
    n_logit_rows_ = 0;  // they are in the caller's span, not here to be read again
  } else {
    compute(batch, kv, nullptr);
    read_logits(0, logits);
  }
}

void Model::run(const Batch& batch, kv::KvBlockPool& kv) { compute(batch, kv, nullptr); }

void Model::read_logits(int first_row, std::span<float> out) {
  const auto vocab = static_cast<size_t>(config_.vocab);
  if (first_row < 0 || out.size() % vocab != 0 || first_row + out.size() / vocab > static_cast<size_t>(n_logit_rows_)) {
    throw std::invalid_argument("read_logits: rows beyond the last run's logits");
  }
  const int n_rows = static_cast<int>(out.size() / vocab);
  if (shards_.size() == 1) {
    shards_.front()->read_logits(first_row, n_rows, out.data(), vocab);
    return;
  }
  // Each rank writes its vocabulary slice's columns of the rows: disjoint parts of `out`.
  on_every_rank([&](int r) {
    ModelShard& s = *shards_[static_cast<size_t>(r)];
    s.read_logits(first_row, n_rows, out.data() + s.plan().vocab.begin, vocab);
  });
}

void Model::read_top_logits(std::span<backend::TopLogits> out) {
  if (out.size() != static_cast<size_t>(n_logit_rows_)) {
    throw std::invalid_argument("read_top_logits: " + std::to_string(out.size()) + " rows asked, the last run has " +
                                std::to_string(n_logit_rows_));
  }
  if (out.empty()) return;
  if (shards_.size() == 1) {
    shards_.front()->read_top_logits(n_logit_rows_, out.data());
    return;
  }
  // Each rank finds the heads of its slices; one all-gather brings them together, and one copy to the host.
  gathered_top_.resize(out.size() * shards_.size());
  on_every_rank([&](int r) {
    shards_[static_cast<size_t>(r)]->gather_top_logits(n_logit_rows_);
    if (r == 0) shards_.front()->read_gathered_top_logits(n_logit_rows_, gathered_top_.data());
  });
  std::vector<int64_t> begins;
  for (const auto& s : shards_) begins.push_back(s->plan().vocab.begin);
  merge_top_logits(gathered_top_, begins, n_logit_rows_, config_.vocab, out);
}

void Model::compute(const Batch& batch, kv::KvBlockPool& kv, float* host_logits) {
  const ModelConfig& c = config_;
  const int n = batch.size();
  if (batch.positions.size() != static_cast<size_t>(n) || batch.seq_of_row.size() != static_cast<size_t>(n)) {
    throw std::invalid_argument("batch: tokens, positions and sequence ids differ in length");
  }
  for (int32_t s : batch.seq_of_row) {
    if (s < 0 || static_cast<size_t>(s) >= batch.block_tables.size()) throw std::invalid_argument("batch: bad sequence id");
  }
  for (int32_t r : batch.logit_rows) {
    if (r < 0 || r >= n) throw std::invalid_argument("batch: logit row out of range");
  }
  if (kv.shape().n_layers != c.n_layers || kv.shape().n_kv_heads != c.n_kv_heads || kv.shape().head_dim != c.head_dim ||
      kv.n_shards() != tensor_parallel()) {
    throw std::invalid_argument("forward: KV pool shape does not match the model");
  }
  n_logit_rows_ = 0;
  if (n == 0) return;

  rope_.resize(static_cast<size_t>(n) * static_cast<size_t>(c.n_rot));
  backend::fill_rope_table(batch.positions, {c.rope_theta, c.n_rot, rope_freq_factors_}, rope_.data());
  // Checked here, not only by the backends' embedding op: a bad token must fail every rank alike, before any
  // collective, and a replayed step (Backend::replay_step) has no embedding op to check it.
  for (int32_t t : batch.tokens) {
    if (t < 0 || t >= c.vocab) {
      throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(c.vocab));
    }
  }
  if (shards_.size() == 1) {
    shards_.front()->compute(batch, rope_, kv, host_logits);
  } else {
    on_every_rank([&](int r) { shards_[static_cast<size_t>(r)]->compute(batch, rope_, kv, nullptr); });
  }
  n_logit_rows_ = static_cast<int>(batch.logit_rows.size());
}

void merge_top_logits(std::span<const backend::TopLogits> per_rank, std::span<const int64_t> slice_begin, int n_rows,
                      int vocab, std::span<backend::TopLogits> out) {
  struct Entry {
    float logit;
    int32_t id;
  };
  const size_t ranks = slice_begin.size();
  std::vector<Entry> candidates;
  for (size_t row = 0; row < static_cast<size_t>(n_rows); ++row) {
    candidates.clear();
    float top_lse = -INFINITY;
    for (size_t r = 0; r < ranks; ++r) {
      const backend::TopLogits& h = per_rank[r * static_cast<size_t>(n_rows) + row];
      for (int32_t i = 0; i < h.count; ++i) candidates.push_back({h.logits[i], static_cast<int32_t>(h.ids[i] + slice_begin[r])});
      top_lse = std::max(top_lse, h.log_sum_exp);
    }
    // Best first, equal logits in ascending id order, as compute_top_logits orders a whole row.
    const size_t k = std::min(candidates.size(), static_cast<size_t>(std::min(vocab, backend::kTopLogits)));
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k), candidates.end(),
                      [](const Entry& a, const Entry& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); });
    backend::TopLogits& o = out[row];
    for (size_t i = 0; i < k; ++i) {
      o.ids[i] = candidates[i].id;
      o.logits[i] = candidates[i].logit;
    }
    o.count = static_cast<int32_t>(k);
    double sum = 0;
    for (size_t r = 0; r < ranks; ++r) {
      sum += std::exp(static_cast<double>(per_rank[r * static_cast<size_t>(n_rows) + row].log_sum_exp) - top_lse);
    }
    o.log_sum_exp = static_cast<float>(top_lse + std::log(sum));
  }
}

}  // namespace pensieve::model
