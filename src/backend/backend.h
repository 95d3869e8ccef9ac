#pragma once
// The op interface the model is written against. The backend owns where data lives: activations (row-major
// float32 matrices), the KV pool, small vectors and, after prepare(), the weights are Buffers it allocated
// (host memory for the CPU, device memory for CUDA), and the model only passes their pointers back to ops; it
// never dereferences them. Per step, the token/position/slot tables go in through upload_step() and only the
// logits rows the caller wants come back through read(). A backend may fuse or reorder work internally, but
// each op's result is defined here, row by row. Ops run in order; read() waits for the ops before it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::backend {

// Memory a backend allocated; freed by that backend when the last owner lets go. Its bytes may live on another
// device: only the backend's ops and copies may touch them.
struct Buffer {
  std::shared_ptr<std::byte> memory;
  size_t bytes = 0;
  std::byte* data() const { return memory.get(); }
  float* floats() const { return reinterpret_cast<float*>(memory.get()); }
};

// A 2-D weight: `rows` output features, each a contiguous run of `cols` elements of GGML type `type_id`.
// (GGUF shape [cols, rows].)
struct Weight {
  std::string name;
  uint32_t type_id = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  std::span<const std::byte> data;
  // Set by Backend::prepare when it keeps the bytes in a layout or a memory of its own (layout 0: GGUF rows);
  // `owner` then keeps them alive and `data` views them.
  int layout = 0;
  std::shared_ptr<const void> owner;
  // A second form the backend may keep beside `data` (the CUDA backend: the matrix decoded to f16 for its
  // tensor-core GEMMs). Only the backend that prepared the weight reads it.
  std::shared_ptr<const std::byte> dense;
  // The bytes again in a layout of the backend's own product kernels (the CUDA backend: Q6_K super-blocks cut
  // into 16-byte-aligned parts). Only the backend that prepared the weight reads it.
  std::shared_ptr<const std::byte> repacked;
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

// What a step's op sequence and every op's arguments depend on, besides the contents of the step tables (which
// upload_step copies into the same place each time): whose ops (a process-unique id of the model), which of
// its buffers (a generation it bumps when they move), and the step's sizes.
struct StepShape {
  uint64_t owner = 0;
  uint64_t generation = 0;
  int n_rows = 0;
  int n_tokens = 0;
  int n_logit_rows = 0;
  int n_sequences = 0;
  friend bool operator==(const StepShape&, const StepShape&) = default;
};

// A backend's own copy of a step's tables (defined by the backends that need one).
struct StepUpload;

// One forward step's integer tables, in host memory: row i is token tokens[i] at position positions[i] of
// sequence seq_of_row[i], whose KV block table is tables[seq_of_row[i]]; logit_rows are the rows whose logits
// are wanted; rope is [n_rows][n_rot/2][2] (see fill_rope_table). Ops read only what they need of it.
// upload_step() sets `uploaded` where the backend keeps its own copy (the CPU reads the host tables).
struct StepTables {
  std::span<const int32_t> positions;
  std::span<const int32_t> seq_of_row;
  std::span<const std::span<const int32_t>> tables;
  std::span<const int32_t> tokens = {};
  std::span<const int32_t> logit_rows = {};
  std::span<const float> rope = {};
  const StepUpload* uploaded = nullptr;
  int n_rows() const { return static_cast<int>(positions.size()); }
};

// The head of one logits row, for samplers that need no more of it (greedy, top-k up to kTopLogits, logprobs):
// the kTopLogits largest logits, best first, equal logits in ascending id order (as a stable argmax picks),
// and the log-sum-exp of the whole row. Reading this instead of the row saves copying 128-152k floats per
// sequence per step off a GPU.
inline constexpr int kTopLogits = 64;
struct TopLogits {
  int32_t ids[kTopLogits];
  float logits[kTopLogits];
  float log_sum_exp;
  int32_t count;  // min(kTopLogits, vocab)
};

// The head of one row, computed on the host (the CPU backend's op, and the reference for the others).
void compute_top_logits(std::span<const float> row, TopLogits& out);

// Where a backend computes and how much of its memory is taken.
struct DeviceInfo {
  std::string kind;         // "cpu" or "cuda"
  std::string name;         // e.g. "NVIDIA H200", or the CPU kernel table
  int index = 0;            // cuda:N
  uint64_t total_bytes = 0; // device memory (0 for the CPU: host memory is the operating system's)
  uint64_t free_bytes = 0;
  uint64_t allocated_bytes = 0;  // by this backend, now
  uint64_t recorded_steps = 0;   // steps recorded to be launched again as one unit (see replay_step)
  uint64_t replayed_steps = 0;   // steps launched from a recording
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;
  virtual DeviceInfo device_info() const = 0;
  // Bytes per second a weight-streaming kernel can read at best, measured now (the bound of memory-bound
  // decode): the CPU's parallel read bandwidth, or a GPU's device-to-device copy (bytes read + written).
  virtual double measure_bandwidth() = 0;
  // True when Buffers are plain host memory the caller may read and write (the CPU backend).
  virtual bool host_memory() const = 0;
  // The queue this backend's ops run on, for a collective library to enqueue on between them (the CUDA
  // backend: its cudaStream_t); null where ops complete before they return (the CPU).
  virtual void* native_stream() const { return nullptr; }

  // Memory: zero-filled, aligned for any element type. Throws std::runtime_error when the device is full.
  virtual Buffer allocate(size_t bytes) = 0;
  // Host <-> backend copies; `offset` in bytes into the buffer. read() waits for every op issued before it.
  virtual void write(const Buffer& dst, size_t offset, std::span<const std::byte> src) = 0;
  virtual void read(std::span<std::byte> dst, const std::byte* src) = 0;

  // How a weight is used: matrices are multiplied, lookup tables only have rows read out (embed).
  enum class WeightUse { Matrix, Lookup };
  // Called once per weight at load: the backend may copy it into a layout its kernels read faster or into
  // its own memory, after which only this backend's ops may be given it.
  virtual void prepare(Weight& w, WeightUse use) { (void)w, (void)use; }
  // The prefill lengths, up to `longest` rows, whose first run costs more than the next (a GPU library
  // choosing its algorithms per product shape): a server runs each once before it takes requests. None on the
  // CPU.
  virtual std::vector<int> warm_up_prefill_rows(int longest) const {
    (void)longest;
    return {};
  }
  // Makes the backend's copy of the step's tables (once per forward, before the ops that read them).
  virtual void upload_step(StepTables& step) { (void)step; }
  // A backend may record a step's ops once and launch them again as one unit when a step of the same shape
  // comes back (the CUDA backend: a graph, which saves a launch per op). After upload_step: true when the ops
  // of this shape were recorded and have now been enqueued again, so the caller skips issuing them; false when
  // the caller issues them and then calls end_step (completed = false when an exception cut the ops short).
  virtual bool replay_step(const StepShape& shape) {
    (void)shape;
    return false;
  }
  virtual void end_step(bool completed) { (void)completed; }

  // y[n][w.rows] = x[n][w.cols] * W^T.
  virtual void matmul(const Weight& w, const float* x, int n, float* y) = 0;
  // ys[i][n][ws[i]->rows] = x[n][cols] * W_i^T for matrices that multiply the same x (a layer's Q, K and V),
  // as one op, so that a backend can do them in one launch.
  virtual void matmul_same_input(std::span<const Weight* const> ws, const float* x, int n,
                                 std::span<float* const> ys) {
    for (size_t i = 0; i < ws.size(); ++i) matmul(*ws[i], x, n, ys[i]);
  }
  // out[i] = row step.tokens[i] of `table` (a [vocab, dim] weight), as float.
  virtual void embed(const Weight& table, const StepTables& step, float* out) = 0;
  // out[r] = x[r] / rms(x[r]) * gamma, for n_rows rows of `dim`; out may equal x.
  virtual void rmsnorm(const float* x, const float* gamma, int n_rows, int dim, float eps, float* out) = 0;
  // Rotates the first n_rot dims of each head of x[n_rows][n_heads * head_dim] in place by step.rope.
  // neox: pairs (i, i + n_rot/2); else (2i, 2i+1).
  virtual void rope(float* x, int n_heads, int head_dim, int n_rot, bool neox, const StepTables& step) = 0;
  // Writes k, v ([n_rows][n_kv_heads * head_dim]) into the cache slots of each row.
  virtual void store_kv(const KvLayerView& kv, const float* k, const float* v, const StepTables& step) = 0;
  // Causal attention: row i attends to positions [0, positions[i]] of its own sequence, read from the cache
  // (so store_kv for this batch must come first). q and out: [n_rows][n_heads * head_dim]. Grouped-query:
  // head h reads kv head h / (n_heads / n_kv_heads).
  virtual void attention(const float* q, int n_heads, const KvLayerView& kv, const StepTables& step, float scale,
                         float* out) = 0;
  virtual void silu_mul(float* gate, const float* up, size_t n) = 0;  // gate = silu(gate) * up
  // gate[n][w_gate.rows] = silu(x * W_gate^T) * (x * W_up^T): a gated feed-forward layer's two products and
  // their gate as one op, so that a backend can do them in one pass over x. `up` is scratch of the same shape;
  // what it holds afterwards is unspecified.
  virtual void gated_matmul(const Weight& w_gate, const Weight& w_up, const float* x, int n, float* gate,
                            float* up) {
    matmul(w_gate, x, n, gate);
    matmul(w_up, x, n, up);
    silu_mul(gate, up, static_cast<size_t>(n) * static_cast<size_t>(w_gate.rows));
  }
  virtual void add(float* x, const float* y, size_t n) = 0;            // x += y
  virtual void add_rows(float* x, const float* bias, int n_rows, int dim) = 0;  // x[r] += bias
  // out[i] = x[step.logit_rows[i]], rows of `dim`.
  virtual void gather_rows(const float* x, int dim, const StepTables& step, float* out) = 0;
  // out[r] = the head of row r of logits[n_rows][vocab] (see TopLogits); `out` is n_rows TopLogits in this
  // backend's memory. Pure in the row: the result never depends on the other rows.
  virtual void top_logits(const float* logits, int n_rows, int vocab, TopLogits* out) = 0;

  // Convenience: a buffer holding `values`.
  Buffer upload(std::span<const float> values);
  void read(std::span<float> dst, const float* src) {
    read(std::as_writable_bytes(dst), reinterpret_cast<const std::byte*>(src));
  }
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

// The CUDA backend on GPU `index`. Throws std::runtime_error (one line) when this build has no CUDA, or the
// driver or the GPU is missing.
std::unique_ptr<Backend> make_cuda_backend(int index = 0);
// Why CUDA cannot be used here (no CUDA in this build, no driver, no GPU), or empty when GPU `index` can.
std::string cuda_unavailable_reason(int index = 0);

// --device: "auto" (CUDA when this build has it and a GPU is present, else the CPU), "cpu", "cuda" or
// "cuda:N". Throws std::invalid_argument for anything else.
struct DeviceChoice {
  enum class Kind { Auto, Cpu, Cuda } kind = Kind::Auto;
  int index = 0;
};
DeviceChoice parse_device(std::string_view text);
// Makes the chosen backend. `note` receives one line saying why auto fell back to the CPU (empty otherwise).
// Throws std::runtime_error when an explicit cuda choice cannot be served.
std::unique_ptr<Backend> make_backend(const DeviceChoice& choice, int threads, std::string* note = nullptr);

}  // namespace pensieve::backend
