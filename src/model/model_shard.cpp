#include "model/model_shard.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>

#include "tensor/dequantize.h"

namespace pensieve::model {

namespace {

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const gguf::TensorInfo& find(const gguf::GgufFile& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) throw std::runtime_error(f.name() + ": missing tensor '" + name + "'");
  return *t;
}

backend::Weight bind_matrix(const gguf::GgufFile& f, const gguf::TensorInfo& t, int64_t cols, int64_t rows) {
  if (t.shape.size() != 2 || t.shape[0] != static_cast<uint64_t>(cols) || t.shape[1] != static_cast<uint64_t>(rows)) {
    throw std::runtime_error(f.name() + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) + ", expected [" +
                             std::to_string(cols) + ", " + std::to_string(rows) + "]");
  }
  tensor::require_supported(t);
  backend::Weight w;
  w.name = t.name;
  w.type_id = t.type_id;
  w.rows = rows;
  w.cols = cols;
  auto row_bytes = gguf::bytes_for(t.type_id, static_cast<uint64_t>(cols));
  if (!row_bytes) throw std::runtime_error(f.name() + ": tensor '" + t.name + "' rows are not whole blocks");
  w.row_bytes = static_cast<size_t>(*row_bytes);
  w.data = f.tensor_data(t);
  return w;
}

backend::Weight matrix(const gguf::GgufFile& f, const std::string& name, int64_t cols, int64_t rows) {
  return bind_matrix(f, find(f, name), cols, rows);
}

}  // namespace

std::vector<float> read_vector(const gguf::GgufFile& f, const std::string& name, int64_t n) {
  const gguf::TensorInfo& t = find(f, name);
  if (t.shape.size() != 1 || t.shape[0] != static_cast<uint64_t>(n)) {
    throw std::runtime_error(f.name() + ": tensor '" + name + "' has shape " + shape_text(t.shape) + ", expected [" +
                             std::to_string(n) + "]");
  }
  tensor::require_supported(t);
  std::vector<float> out(static_cast<size_t>(n));
  tensor::dequantize(t.type_id, f.tensor_data(t), out);
  return out;
}

const gguf::TensorInfo& embedding_tensor(const gguf::GgufFile& f) {
  const gguf::TensorInfo& embd = find(f, "token_embd.weight");
  if (embd.shape.size() != 2) throw std::runtime_error(f.name() + ": token_embd.weight is not a matrix");
  return embd;
}

ModelShard::ModelShard(const gguf::GgufFile& file, const ModelConfig& config, const ShardPlan& plan,
                       backend::Backend& backend, backend::Communicator* comm)
    : file_(file), config_(config), plan_(plan), backend_(backend), comm_(comm) {
  bind_weights(embedding_tensor(file));
}

void ModelShard::bind_weights(const gguf::TensorInfo& embd) {
  const ModelConfig& c = config_;
  const bool split = plan_.world > 1;
  const int64_t hd = c.head_dim;
  const Slice q_part{plan_.heads.begin * hd, plan_.heads.end * hd};
  const Slice kv_part{plan_.kv_heads.begin * hd, plan_.kv_heads.end * hd};
  const auto rows = [&](backend::Weight w, Slice part) { return split ? row_slice(w, part) : w; };
  const auto cols = [&](backend::Weight w, Slice part) { return split ? column_slice(w, part, plan_.world) : w; };

  token_embd_ = bind_matrix(file_, embd, c.dim, c.vocab);
  const bool tied = file_.find_tensor("output.weight") == nullptr;
  output_ = rows(tied ? token_embd_ : matrix(file_, "output.weight", c.dim, c.vocab), plan_.vocab);
  prepare(output_, backend::Backend::WeightUse::Matrix);
  if (tied && !split) {
    token_embd_ = output_;  // one copy serves both the lookup and the output product
  } else {
    prepare(token_embd_, backend::Backend::WeightUse::Lookup);  // every rank looks up whole rows
  }
  output_norm_ = vector_in_backend("output_norm.weight", c.dim, {0, c.dim});

  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = layers_[static_cast<size_t>(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    L.attn_norm = vector_in_backend(p + "attn_norm.weight", c.dim, {0, c.dim});
    L.ffn_norm = vector_in_backend(p + "ffn_norm.weight", c.dim, {0, c.dim});
    L.wq = rows(matrix(file_, p + "attn_q.weight", c.dim, c.q_dim()), q_part);
    L.wk = rows(matrix(file_, p + "attn_k.weight", c.dim, c.kv_dim()), kv_part);
    L.wv = rows(matrix(file_, p + "attn_v.weight", c.dim, c.kv_dim()), kv_part);
    L.wo = cols(matrix(file_, p + "attn_output.weight", c.q_dim(), c.dim), q_part);
    L.w_gate = rows(matrix(file_, p + "ffn_gate.weight", c.dim, c.ffn_dim), plan_.ffn);
    L.w_up = rows(matrix(file_, p + "ffn_up.weight", c.dim, c.ffn_dim), plan_.ffn);
    L.w_down = cols(matrix(file_, p + "ffn_down.weight", c.ffn_dim, c.dim), plan_.ffn);
    for (backend::Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      prepare(*w, backend::Backend::WeightUse::Matrix);
    }
    if (c.qkv_bias) {
      L.bq = vector_in_backend(p + "attn_q.bias", c.q_dim(), q_part);
      L.bk = vector_in_backend(p + "attn_k.bias", c.kv_dim(), kv_part);
      L.bv = vector_in_backend(p + "attn_v.bias", c.kv_dim(), kv_part);
    }
    if (c.qk_norm) {
      L.q_norm = vector_in_backend(p + "attn_q_norm.weight", c.head_dim, {0, c.head_dim});
      L.k_norm = vector_in_backend(p + "attn_k_norm.weight", c.head_dim, {0, c.head_dim});
    }
  }
}

void ModelShard::prepare(backend::Weight& w, backend::Backend::WeightUse use) {
  const std::span<const std::byte> mapped = w.data;
  backend_.prepare(w, use);
  // Re-laid out or uploaded: the backend's copy is read from now on, and the mapped original need not stay
  // resident (another rank reading the same pages faults them back in from the file).
  if (w.data.data() != mapped.data()) file_.release_pages(mapped);
}

backend::Buffer ModelShard::vector_in_backend(const std::string& name, int64_t n, Slice part) {
  const std::vector<float> whole = read_vector(file_, name, n);
  return backend_.upload(part.size() == n ? whole : vector_slice(whole, part));
}

uint64_t ModelShard::weight_bytes() const {
  uint64_t total = 0;
  for (const LayerWeights& L : layers_) {
    for (const backend::Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) total += w->data.size();
  }
  return total + output_.data.size();  // the embedding is only looked up, one row per token
}

void ModelShard::reserve_rows(int n_rows, int n_logit_rows, bool keep_logits) {
  const ModelConfig& c = plan_.local;
  const auto floats = [this](size_t n) { return backend_.allocate(n * sizeof(float)); };
  if (n_rows > capacity_rows_) {
    ++buffers_generation_;
    const size_t n = static_cast<size_t>(n_rows);
    x_ = floats(n * static_cast<size_t>(c.dim));
    h_ = floats(n * static_cast<size_t>(std::max(c.dim, c.q_dim())));
    q_ = floats(n * static_cast<size_t>(c.q_dim()));
    k_ = floats(n * static_cast<size_t>(c.kv_dim()));
    v_ = floats(n * static_cast<size_t>(c.kv_dim()));
    attn_ = floats(n * static_cast<size_t>(c.q_dim()));
    gate_ = floats(n * static_cast<size_t>(c.ffn_dim));
    up_ = floats(n * static_cast<size_t>(c.ffn_dim));
    capacity_rows_ = n_rows;
  }
  if (n_logit_rows > capacity_logit_rows_) {
    ++buffers_generation_;
    selected_ = floats(static_cast<size_t>(n_logit_rows) * static_cast<size_t>(c.dim));
    capacity_logit_rows_ = n_logit_rows;
    logits_ = {};
    top_ = {};
    gathered_top_ = {};
  }
  // Where the backend's memory is the host's and the caller gave a span, the logits go straight into it.
  if (keep_logits && !logits_.memory) {
    ++buffers_generation_;
    logits_ = floats(static_cast<size_t>(capacity_logit_rows_) * static_cast<size_t>(c.vocab));
  }
}

void ModelShard::complete_partial_sums(float* x, size_t n) {
  if (comm_) comm_->all_reduce_sum(x, n);
}

void ModelShard::compute(const Batch& batch, std::span<const float> rope, kv::KvBlockPool& kv, float* host_logits) {
  const int n = batch.size();
  const size_t n_out = batch.logit_rows.size();
  reserve_rows(n, static_cast<int>(n_out), host_logits == nullptr);

  backend::Backend& be = backend_;
  backend::StepTables step{batch.positions, batch.seq_of_row, batch.block_tables};
  step.tokens = batch.tokens;
  step.logit_rows = batch.logit_rows;
  step.rope = rope;
  be.upload_step(step);
  // A recorded step reads the KV pool where it was when recorded (a pool made where a freed one was, but of
  // another size, puts its V halves elsewhere).
  const KvPlace kv_place{kv.k_base(0, plan_.rank), kv.v_base(0, plan_.rank), kv.block_bytes(), kv.type()};
  if (kv_place != last_kv_) {
    last_kv_ = kv_place;
    ++buffers_generation_;
  }
  // Steps with collectives between their ops are not recorded: a communicator may wait on the host.
  const backend::StepShape shape{id_, buffers_generation_, n, static_cast<int>(batch.tokens.size()),
                                 static_cast<int>(n_out), static_cast<int>(batch.block_tables.size())};
  if (comm_ == nullptr && host_logits == nullptr && be.replay_step(shape)) return;
  try {
    issue_ops(step, kv, host_logits);
  } catch (...) {
    be.end_step(false);
    throw;
  }
  be.end_step(true);
}

void ModelShard::issue_ops(const backend::StepTables& step, kv::KvBlockPool& kv, float* host_logits) {
  const ModelConfig& c = plan_.local;
  backend::Backend& be = backend_;
  const int n = step.n_rows();
  const size_t n_out = step.logit_rows.size();
  float* const x = x_.floats();
  float* const h = h_.floats();
  float* const q = q_.floats();
  float* const k = k_.floats();
  float* const v = v_.floats();
  float* const attn = attn_.floats();
  float* const gate = gate_.floats();
  float* const up = up_.floats();
  be.embed(token_embd_, step, x);
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const backend::KvElement kv_element = kv.type() == kv::KvType::F32  ? backend::KvElement::F32
                                        : kv.type() == kv::KvType::F16 ? backend::KvElement::F16
                                                                        : backend::KvElement::Q8_0;
  const size_t dim_elems = static_cast<size_t>(n) * static_cast<size_t>(c.dim);

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = layers_[static_cast<size_t>(l)];
    be.rmsnorm(x, L.attn_norm.floats(), n, c.dim, c.rms_eps, h);
    const std::array<const backend::Weight*, 3> qkv_weights{&L.wq, &L.wk, &L.wv};
    const std::array<float*, 3> qkv{q, k, v};
    be.matmul_same_input(qkv_weights, h, n, qkv);
    if (c.qkv_bias) {
      be.add_rows(q, L.bq.floats(), n, c.q_dim());
      be.add_rows(k, L.bk.floats(), n, c.kv_dim());
      be.add_rows(v, L.bv.floats(), n, c.kv_dim());
    }
    if (c.qk_norm) {
      be.rmsnorm(q, L.q_norm.floats(), n * c.n_heads, c.head_dim, c.rms_eps, q);
      be.rmsnorm(k, L.k_norm.floats(), n * c.n_kv_heads, c.head_dim, c.rms_eps, k);
    }
    be.rope(q, c.n_heads, c.head_dim, c.n_rot, c.rope_neox, step);
    be.rope(k, c.n_kv_heads, c.head_dim, c.n_rot, c.rope_neox, step);

    backend::KvLayerView view;
    view.k = kv.k_base(l, plan_.rank);
    view.v = kv.v_base(l, plan_.rank);
    view.block_bytes = kv.block_bytes();
    view.block_tokens = kv::kBlockTokens;
    view.element = kv_element;
    view.n_kv_heads = c.n_kv_heads;
    view.head_dim = c.head_dim;
    be.store_kv(view, k, v, step);
    be.attention(q, c.n_heads, view, step, attn_scale, attn);

    be.matmul(L.wo, attn, n, h);
    complete_partial_sums(h, dim_elems);
    be.add(x, h, dim_elems);
    be.rmsnorm(x, L.ffn_norm.floats(), n, c.dim, c.rms_eps, h);
    be.gated_matmul(L.w_gate, L.w_up, h, n, gate, up);
    be.matmul(L.w_down, gate, n, h);
    complete_partial_sums(h, dim_elems);
    be.add(x, h, dim_elems);
  }

  if (n_out == 0) return;
  float* const selected = selected_.floats();
  be.gather_rows(x, c.dim, step, selected);
  be.rmsnorm(selected, output_norm_.floats(), static_cast<int>(n_out), c.dim, c.rms_eps, selected);
  be.matmul(output_, selected, static_cast<int>(n_out), host_logits ? host_logits : logits_.floats());
}

void ModelShard::read_logits(int first_row, int n_rows, float* out, size_t out_stride) {
  const auto width = static_cast<size_t>(plan_.local.vocab);
  const float* src = logits_.floats() + static_cast<size_t>(first_row) * width;
  const size_t n = static_cast<size_t>(n_rows) * width;
  if (out_stride == width) {
    backend_.read(std::span<float>(out, n), src);
    return;
  }
  staging_.resize(n);
  backend_.read(std::span<float>(staging_), src);
  for (size_t r = 0; r < static_cast<size_t>(n_rows); ++r) {
    std::copy_n(staging_.data() + r * width, width, out + r * out_stride);
  }
}

void ModelShard::read_top_logits(int n_rows, backend::TopLogits* out) {
  if (backend_.host_memory()) {
    backend_.top_logits(logits_.floats(), n_rows, plan_.local.vocab, out);
    return;
  }
  if (!top_.memory) top_ = backend_.allocate(static_cast<size_t>(capacity_logit_rows_) * sizeof(backend::TopLogits));
  auto* device_top = reinterpret_cast<backend::TopLogits*>(top_.data());
  backend_.top_logits(logits_.floats(), n_rows, plan_.local.vocab, device_top);
  backend_.read(std::as_writable_bytes(std::span(out, static_cast<size_t>(n_rows))), top_.data());
}

void ModelShard::gather_top_logits(int n_rows) {
  const size_t row_bytes = sizeof(backend::TopLogits);
  if (!top_.memory) top_ = backend_.allocate(static_cast<size_t>(capacity_logit_rows_) * row_bytes);
  if (!gathered_top_.memory) {
    gathered_top_ = backend_.allocate(static_cast<size_t>(capacity_logit_rows_) * static_cast<size_t>(plan_.world) * row_bytes);
  }
  backend_.top_logits(logits_.floats(), n_rows, plan_.local.vocab, reinterpret_cast<backend::TopLogits*>(top_.data()));
  comm_->all_gather(top_.data(), static_cast<size_t>(n_rows) * row_bytes, gathered_top_.data());
}

void ModelShard::read_gathered_top_logits(int n_rows, backend::TopLogits* out) {
  const size_t n = static_cast<size_t>(n_rows) * static_cast<size_t>(plan_.world);
  backend_.read(std::as_writable_bytes(std::span(out, n)), gathered_top_.data());
}

uint64_t ModelShard::next_shard_id() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

}  // namespace pensieve::model
