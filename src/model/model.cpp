#include "model/model.h"

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

std::vector<float> vector_of(const gguf::GgufFile& f, const std::string& name, int64_t n) {
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

}  // namespace

std::unique_ptr<Model> Model::load(const std::filesystem::path& path, backend::Backend& backend) {
  gguf::GgufFile file = gguf::GgufFile::open(path);
  ModelConfig config = read_model_config(file);
  std::unique_ptr<Model> m(new Model(std::move(file), config, backend));
  m->bind_weights();
  return m;
}

Model::Model(gguf::GgufFile file, ModelConfig config, backend::Backend& backend)
    : file_(std::move(file)), config_(std::move(config)), backend_(backend) {}

void Model::bind_weights() {
  const ModelConfig& c = config_;
  const gguf::TensorInfo& embd = find(file_, "token_embd.weight");
  if (embd.shape.size() != 2) throw std::runtime_error(file_.name() + ": token_embd.weight is not a matrix");
  config_.vocab = static_cast<int>(embd.shape[1]);
  token_embd_ = bind_matrix(file_, embd, c.dim, config_.vocab);
  const bool tied = file_.find_tensor("output.weight") == nullptr;
  output_ = tied ? token_embd_ : matrix(file_, "output.weight", c.dim, c.vocab);
  prepare(output_, backend::Backend::WeightUse::Matrix);
  if (tied) {
    token_embd_ = output_;  // one copy serves both the lookup and the output product
  } else {
    prepare(token_embd_, backend::Backend::WeightUse::Lookup);
  }
  output_norm_ = vector_in_backend("output_norm.weight", c.dim);
  if (file_.find_tensor("rope_freqs.weight")) rope_freq_factors_ = vector_of(file_, "rope_freqs.weight", c.n_rot / 2);

  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = layers_[static_cast<size_t>(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    L.attn_norm = vector_in_backend(p + "attn_norm.weight", c.dim);
    L.ffn_norm = vector_in_backend(p + "ffn_norm.weight", c.dim);
    L.wq = matrix(file_, p + "attn_q.weight", c.dim, c.q_dim());
    L.wk = matrix(file_, p + "attn_k.weight", c.dim, c.kv_dim());
    L.wv = matrix(file_, p + "attn_v.weight", c.dim, c.kv_dim());
    L.wo = matrix(file_, p + "attn_output.weight", c.q_dim(), c.dim);
    L.w_gate = matrix(file_, p + "ffn_gate.weight", c.dim, c.ffn_dim);
    L.w_up = matrix(file_, p + "ffn_up.weight", c.dim, c.ffn_dim);
    L.w_down = matrix(file_, p + "ffn_down.weight", c.ffn_dim, c.dim);
    for (backend::Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      prepare(*w, backend::Backend::WeightUse::Matrix);
    }
    if (c.qkv_bias) {
      L.bq = vector_in_backend(p + "attn_q.bias", c.q_dim());
      L.bk = vector_in_backend(p + "attn_k.bias", c.kv_dim());
      L.bv = vector_in_backend(p + "attn_v.bias", c.kv_dim());
    }
    if (c.qk_norm) {
      L.q_norm = vector_in_backend(p + "attn_q_norm.weight", c.head_dim);
      L.k_norm = vector_in_backend(p + "attn_k_norm.weight", c.head_dim);
    }
  }
}

void Model::prepare(backend::Weight& w, backend::Backend::WeightUse use) {
  const std::span<const std::byte> mapped = w.data;
  backend_.prepare(w, use);
  // Re-laid out or uploaded: the backend's copy is read from now on, and the mapped original need not stay
  // resident.
  if (w.data.data() != mapped.data()) file_.release_pages(mapped);
}

backend::Buffer Model::vector_in_backend(const std::string& name, int64_t n) {
  return backend_.upload(vector_of(file_, name, n));
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const LayerWeights& L : layers_) {
    for (const backend::Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) total += w->data.size();
  }
  return total + output_.data.size();  // the embedding is only looked up, one row per token
}

kv::KvBlockPool Model::make_kv_pool(kv::KvType type, int n_blocks) const {
  return kv::KvBlockPool({config_.n_layers, config_.n_kv_heads, config_.head_dim}, type, n_blocks,
                         [this](size_t bytes) { return backend_.allocate(bytes).memory; });
}

void Model::reserve_rows(int n_rows, int n_logit_rows, bool keep_logits) {
  const ModelConfig& c = config_;
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
    rope_.resize(n * static_cast<size_t>(c.n_rot));
    capacity_rows_ = n_rows;
  }
  if (n_logit_rows > capacity_logit_rows_) {
    ++buffers_generation_;
    selected_ = floats(static_cast<size_t>(n_logit_rows) * static_cast<size_t>(c.dim));
    capacity_logit_rows_ = n_logit_rows;
    logits_ = {};
    top_ = {};
  }
  // Where the backend's memory is the host's and the caller gave a span, the logits go straight into it.
  if (keep_logits && !logits_.memory) {
    ++buffers_generation_;
    logits_ = floats(static_cast<size_t>(capacity_logit_rows_) * static_cast<size_t>(c.vocab));
  }
}

void Model::forward(const Batch& batch, kv::KvBlockPool& kv, std::span<float> logits) {
  const size_t n_out = batch.logit_rows.size();
  if (logits.size() != n_out * static_cast<size_t>(config_.vocab)) {
    throw std::invalid_argument("forward: logits buffer holds " + std::to_string(logits.size()) + " floats, need " +
                                std::to_string(n_out * static_cast<size_t>(config_.vocab)));
  }
  if (backend_.host_memory()) {
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
  backend_.read(out, logits_.floats() + static_cast<size_t>(first_row) * vocab);
}

void Model::read_top_logits(std::span<backend::TopLogits> out) {
  if (out.size() != static_cast<size_t>(n_logit_rows_)) {
    throw std::invalid_argument("read_top_logits: " + std::to_string(out.size()) + " rows asked, the last run has " +
                                std::to_string(n_logit_rows_));
  }
  if (out.empty()) return;
  if (backend_.host_memory()) {
    backend_.top_logits(logits_.floats(), n_logit_rows_, config_.vocab, out.data());
    return;
  }
  if (!top_.memory) top_ = backend_.allocate(static_cast<size_t>(capacity_logit_rows_) * sizeof(backend::TopLogits));
  auto* device_top = reinterpret_cast<backend::TopLogits*>(top_.data());
  backend_.top_logits(logits_.floats(), n_logit_rows_, config_.vocab, device_top);
  backend_.read(std::as_writable_bytes(out), top_.data());
}

void Model::compute(const Batch& batch, kv::KvBlockPool& kv, float* host_logits) {
  const ModelConfig& c = config_;
  const int n = batch.size();
  const size_t n_out = batch.logit_rows.size();
  if (batch.positions.size() != static_cast<size_t>(n) || batch.seq_of_row.size() != static_cast<size_t>(n)) {
    throw std::invalid_argument("batch: tokens, positions and sequence ids differ in length");
  }
  for (int32_t s : batch.seq_of_row) {
    if (s < 0 || static_cast<size_t>(s) >= batch.block_tables.size()) throw std::invalid_argument("batch: bad sequence id");
  }
  for (int32_t r : batch.logit_rows) {
    if (r < 0 || r >= n) throw std::invalid_argument("batch: logit row out of range");
  }
  // Checked here, not only by the backend's embedding op: a replayed step does not call it.
  for (int32_t t : batch.tokens) {
    if (t < 0 || t >= token_embd_.rows) {
      throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary of " +
                              std::to_string(token_embd_.rows));
    }
  }
  if (kv.shape().n_layers != c.n_layers || kv.shape().n_kv_heads != c.n_kv_heads || kv.shape().head_dim != c.head_dim) {
    throw std::invalid_argument("forward: KV pool shape does not match the model");
  }
  n_logit_rows_ = 0;
  if (n == 0) return;
  reserve_rows(n, static_cast<int>(n_out), host_logits == nullptr);

  backend::Backend& be = backend_;
  backend::fill_rope_table(batch.positions, {c.rope_theta, c.n_rot, rope_freq_factors_}, rope_.data());
  backend::StepTables step{batch.positions, batch.seq_of_row, batch.block_tables};
  step.tokens = batch.tokens;
  step.logit_rows = batch.logit_rows;
  step.rope = std::span<const float>(rope_).first(static_cast<size_t>(n) * static_cast<size_t>(c.n_rot));
  be.upload_step(step);
  // A recorded step reads the KV pool where it was when recorded.
  const KvPlace kv_place{kv.k_base(0), kv.v_base(0), kv.block_bytes(), kv.type()};
  if (kv_place != last_kv_) {
    last_kv_ = kv_place;
    ++buffers_generation_;
  }
  const backend::StepShape shape{id_, buffers_generation_, n, static_cast<int>(batch.tokens.size()),
                                 static_cast<int>(n_out), static_cast<int>(batch.block_tables.size())};
  if (host_logits == nullptr && be.replay_step(shape)) {
    n_logit_rows_ = static_cast<int>(n_out);
    return;
  }
  try {
    issue_ops(step, kv, host_logits);
  } catch (...) {
    be.end_step(false);
    throw;
  }
  be.end_step(true);
  n_logit_rows_ = static_cast<int>(n_out);
}

void Model::issue_ops(const backend::StepTables& step, kv::KvBlockPool& kv, float* host_logits) {
  const ModelConfig& c = config_;
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
    be.matmul(L.wq, h, n, q);
    be.matmul(L.wk, h, n, k);
    be.matmul(L.wv, h, n, v);
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
    view.k = kv.k_base(l);
    view.v = kv.v_base(l);
    view.block_bytes = kv.block_bytes();
    view.block_tokens = kv::kBlockTokens;
    view.element = kv_element;
    view.n_kv_heads = c.n_kv_heads;
    view.head_dim = c.head_dim;
    be.store_kv(view, k, v, step);
    be.attention(q, c.n_heads, view, step, attn_scale, attn);

    be.matmul(L.wo, attn, n, h);
    be.add(x, h, dim_elems);
    be.rmsnorm(x, L.ffn_norm.floats(), n, c.dim, c.rms_eps, h);
    be.matmul(L.w_gate, h, n, gate);
    be.matmul(L.w_up, h, n, up);
    be.silu_mul(gate, up, static_cast<size_t>(n) * static_cast<size_t>(c.ffn_dim));
    be.matmul(L.w_down, gate, n, h);
    be.add(x, h, dim_elems);
  }

  if (n_out == 0) return;
  float* const selected = selected_.floats();
  be.gather_rows(x, c.dim, step, selected);
  be.rmsnorm(selected, output_norm_.floats(), static_cast<int>(n_out), c.dim, c.rms_eps, selected);
  be.matmul(output_, selected, static_cast<int>(n_out), host_logits ? host_logits : logits_.floats());
}

uint64_t Model::next_model_id() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

}  // namespace pensieve::model
