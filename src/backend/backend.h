#pragma once
// The op interface the model is written against. Activations are row-major float32 matrices owned by the
// caller; weights are views of (quantized) tensor bytes, usually straight from the GGUF mmap. A backend may
// fuse or reorder work internally, but each op's result is defined here, row by row.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace pensieve::backend {

// A 2-D weight: `rows` output features, each a contiguous run of `cols` elements of GGML type `type_id`.
// (GGUF shape [cols, rows].)
struct Weight {
  std::string name;
  uint32_t type_id = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  std::span<const std::byte> data;
  // Set by Backend::prepare when it keeps the bytes in a layout of its own (0: GGUF rows); `packed` then owns
  // them and `data` views it.
  int layout = 0;
  std::shared_ptr<const std::vector<std::byte>> packed;
};

// Q8_0: GGML blocks of 32 elements (fp16 scale, 32 int8), 34 bytes; head_dim must be a multiple of 32.
enum class KvElement { F32, F16, Q8_0 };

// One layer's view of the paged KV pool: block b's K rows start at k + b * block_bytes, laid out
// [block_tokens][n_kv_heads][head_dim]; V likewise.
struct KvLayerView {
  std::byte* k = nullptr;
  std::byte* v = nullptr;
  size_t block_bytes = 0;
  int block_tokens = 16;
  KvElement element = KvElement::F16;
  int n_kv_heads = 0;
  int head_dim = 0;

  // One KV head's part of a token's row, and the whole row, in bytes.
  size_t head_bytes() const {
    const auto hd = static_cast<size_t>(head_dim);
    switch (element) {
      case KvElement::F32: return hd * 4;
      case KvElement::F16: return hd * 2;
      case KvElement::Q8_0: return hd / 32 * 34;
    }
    return 0;
  }
  size_t row_bytes() const { return static_cast<size_t>(n_kv_heads) * head_bytes(); }
};

// Which cache slots the rows of a batch use: row i is position positions[i] of sequence seq_of_row[i],
// whose block table is tables[seq_of_row[i]].
struct TokenSlots {
  std::span<const int32_t> positions;
  std::span<const int32_t> seq_of_row;
  std::span<const std::span<const int32_t>> tables;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;

  // Called once per weight matrix at load: the backend may copy it into a layout its kernels read faster
  // (same size), after which only this backend's ops may be given it.
  virtual void prepare(Weight& w) { (void)w; }

  // y[n][w.rows] = x[n][w.cols] * W^T.
  virtual void matmul(const Weight& w, const float* x, int n, float* y) = 0;
  // out[i] = row tokens[i] of `table` (a [vocab, dim] weight), as float.
  virtual void embed(const Weight& table, std::span<const int32_t> tokens, float* out) = 0;
  // out[r] = x[r] / rms(x[r]) * gamma, for n_rows rows of `dim`; out may equal x.
  virtual void rmsnorm(const float* x, const float* gamma, int n_rows, int dim, float eps, float* out) = 0;
  // Rotates the first n_rot dims of each head of x[n_tokens][n_heads * head_dim] in place.
  // cos_sin is [n_tokens][n_rot/2][2] (see fill_rope_table). neox: pairs (i, i + n_rot/2); else (2i, 2i+1).
  virtual void rope(float* x, int n_tokens, int n_heads, int head_dim, int n_rot, bool neox,
                    const float* cos_sin) = 0;
  // Writes k, v ([n_rows][n_kv_heads * head_dim]) into the cache slots of each row.
  virtual void store_kv(const KvLayerView& kv, const float* k, const float* v, const TokenSlots& slots) = 0;
  // Causal attention: row i attends to positions [0, positions[i]] of its own sequence, read from the cache
  // (so store_kv for this batch must come first). q and out: [n_rows][n_heads * head_dim]. Grouped-query:
  // head h reads kv head h / (n_heads / n_kv_heads).
  virtual void attention(const float* q, int n_heads, const KvLayerView& kv, const TokenSlots& slots, float scale,
                         float* out) = 0;
  virtual void silu_mul(float* gate, const float* up, size_t n) = 0;  // gate = silu(gate) * up
  virtual void add(float* x, const float* y, size_t n) = 0;            // x += y
  virtual void add_rows(float* x, const float* bias, int n_rows, int dim) = 0;  // x[r] += bias
};

struct RopeTableParams {
  float theta = 10000.0f;
  int n_rot = 0;
  std::span<const float> freq_factors;  // empty, or n_rot/2 divisors of the inverse frequencies (Llama 3)
};
// cos_sin[t][i] = (cos, sin) of positions[t] * theta^(-2i/n_rot) / freq_factors[i].
void fill_rope_table(std::span<const int32_t> positions, const RopeTableParams& p, float* cos_sin);

// threads <= 0: the number of physical cores.
// interleave: let prepare() re-lay Q4_0/Q8_0/Q4_K/Q6_K matrices out for the kernels (PENSIEVE_INTERLEAVE=0 in the
// environment turns it off everywhere, to measure the GGUF-order kernels).
std::unique_ptr<Backend> make_cpu_backend(int threads = 0, bool interleave = true);
int physical_cores();

}  // namespace pensieve::backend
