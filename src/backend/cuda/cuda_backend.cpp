// The CUDA backend's host side: device memory, the per-step table upload, and the choice of kernel per op.
// Everything runs in order on one stream; read() is the only point the host waits (besides load-time writes),
// so a forward pass is a chain of launches with one copy in and one copy out.
//
// Matrix products: quantized weights with few activation rows go to the matvec kernels, which read the
// quantized bytes once; larger batches decode the matrix to f16 and call cuBLAS, whose tensor-core GEMM
// repays the decode. F16 weights take a tensor-core kernel for up to 16 rows (matvec_f16.cu) and cuBLAS
// above; BF16/F32 weights always go to cuBLAS.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/held_back_ops.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_profile.h"
#include "gguf/ggml_type.h"

namespace pensieve::backend {
namespace {

using cuda::check;
using cuda::check_launch;

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuBLAS: ") + what + ": " + cublasGetStatusString(s));
  }
}

// Activation rows up to which a quantized product reads the weights in place (the tensor-core tile kernels,
// sixteen rows per pass over the weights); above it, one tensor-core GEMM over the f16 copy (or a per-product
// decode when there is none) costs less. PENSIEVE_CUDA_MATVEC_ROWS overrides it, for tuning. Both paths
// multiply the same f16 weights and sum exactly-rounded products in f32, so a sequence's logits move only by
// the order of the sums when its batch crosses the line.
constexpr int kMatvecMaxRows = 16;

// Page-locked host memory, so that the step's tables and the logits move by DMA without a staging copy.
struct PinnedBuffer {
  std::byte* data = nullptr;
  size_t bytes = 0;
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() {
    if (data) cudaFreeHost(data);
  }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (data) cudaFreeHost(data);
    data = nullptr;
    bytes = 0;
    void* p = nullptr;
    check(cudaMallocHost(&p, n), "pinned host allocation");
    data = static_cast<std::byte*>(p);
    bytes = n;
  }
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index) : index_(index) {
    check(cudaSetDevice(index_), "select device");
    check(cudaGetDeviceProperties(&props_, index_), "device properties");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
    check(cudaEventCreateWithFlags(&upload_done_, cudaEventDisableTiming), "event");
    check(cublasCreate(&blas_), "create handle");
    check(cublasSetStream(blas_, stream_), "set stream");
    // Decoded f16 copies of quantized matrices serve large batches from cuBLAS without decoding every step;
    // they may take up to this share of the card (the KV pool is sized from what is left).
    size_t free = 0, total = 0;
    check(cudaMemGetInfo(&free, &total), "memory info");
    const char* dense = std::getenv("PENSIEVE_CUDA_DENSE_WEIGHTS");
    dense_budget_ = dense != nullptr && std::string(dense) == "0" ? 0 : free / 100 * kDenseShareOfFreeMemory;
    if (const char* rows = std::getenv("PENSIEVE_CUDA_MATVEC_ROWS")) matvec_rows_ = std::atoi(rows);
    const char* repack = std::getenv("PENSIEVE_CUDA_REPACK");
    repack_ = !(repack != nullptr && std::string(repack) == "0");
    const char* gated = std::getenv("PENSIEVE_CUDA_GATED");
    gated_kernel_ = !(gated != nullptr && std::string(gated) == "0");
    const char* merge = std::getenv("PENSIEVE_CUDA_SAME_INPUT");
    same_input_kernel_ = !(merge != nullptr && std::string(merge) == "0");
    const char* fresh = std::getenv("PENSIEVE_CUDA_FRESH_KV");
    fresh_kv_ = !(fresh != nullptr && std::string(fresh) == "0");
    const char* profile = std::getenv("PENSIEVE_CUDA_PROFILE");
    const bool profiling = profile != nullptr && std::string(profile) == "1";
    profile_.enable(profiling, stream_);
    // Steps are recorded as graphs unless PENSIEVE_CUDA_GRAPHS=0 (or while timing each op, whose events a
    // graph would not keep apart).
    const char* graphs = std::getenv("PENSIEVE_CUDA_GRAPHS");
    graphs_enabled_ = !(graphs != nullptr && std::string(graphs) == "0") && !profiling;
    // cuBLAS's own workspace, set once, so that a recorded step allocates nothing.
    blas_workspace_ = allocate(kBlasWorkspaceBytes);
    check(cublasSetWorkspace(blas_, blas_workspace_.data(), kBlasWorkspaceBytes), "set workspace");
  }

  ~CudaBackend() override {
    cudaSetDevice(index_);
    if (recording_) end_step(false);
    cudaStreamSynchronize(stream_);
    forget_graphs();
    profile_.print(stderr);
    cublasDestroy(blas_);
    cudaEventDestroy(upload_done_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda:" + std::to_string(index_) + " " + props_.name; }
  int threads() const override { return 1; }
  bool host_memory() const override { return false; }
  void* native_stream() const override { return stream_; }  // tensor parallel: NCCL enqueues on it

  DeviceInfo device_info() const override {
    DeviceInfo d;
    d.kind = "cuda";
    d.name = props_.name;
    d.index = index_;
    size_t free = 0, total = 0;
    cudaSetDevice(index_);
    if (cudaMemGetInfo(&free, &total) == cudaSuccess) {
      d.free_bytes = free;
      d.total_bytes = total;
    }
    d.allocated_bytes = allocated_->load();
    d.recorded_steps = recorded_steps_;
    d.replayed_steps = replayed_steps_;
    return d;
  }

  double measure_bandwidth() override {
    activate();
    constexpr size_t kBytes = size_t{1} << 30;
    constexpr int kRepeats = 10;
    Buffer a = allocate(kBytes), b = allocate(kBytes);
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "event");
    check(cudaEventCreate(&stop), "event");
    float best_ms = 0;
    for (int round = 0; round < 3; ++round) {
      check(cudaEventRecord(start, stream_), "event record");
      for (int i = 0; i < kRepeats; ++i) {
        check(cudaMemcpyAsync(b.data(), a.data(), kBytes, cudaMemcpyDeviceToDevice, stream_), "copy");
      }
      check(cudaEventRecord(stop, stream_), "event record");
      check(cudaEventSynchronize(stop), "event wait");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
      if (round == 0 || ms < best_ms) best_ms = ms;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return 2.0 * kBytes * kRepeats / (best_ms / 1e3);  // each copy reads and writes every byte
  }

  Buffer allocate(size_t bytes) override {
    activate();
    void* p = nullptr;
    const size_t rounded = std::max<size_t>(bytes, 1);
    const cudaError_t e = cudaMalloc(&p, rounded);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state of a failed allocation
      throw std::runtime_error("CUDA: cannot allocate " + std::to_string(bytes) + " bytes on " + name() + ": " +
                               cudaGetErrorString(e));
    }
    check(cudaMemsetAsync(p, 0, rounded, stream_), "clear allocation");
    *allocated_ += rounded;
    ++allocations_;
    std::shared_ptr<std::atomic<uint64_t>> counter = allocated_;
    const int index = index_;
    return Buffer{std::shared_ptr<std::byte>(static_cast<std::byte*>(p),
                                             [counter, rounded, index](std::byte* q) {
                                               cudaSetDevice(index);
                                               cudaFree(q);
                                               *counter -= rounded;
                                             }),
                  bytes};
  }

  void write(const Buffer& dst, size_t offset, std::span<const std::byte> src) override {
    if (offset > dst.bytes || src.size() > dst.bytes - offset) throw std::out_of_range("write past the end of a buffer");
    if (src.empty()) return;
    activate();
    flush_pending_ops();
    f16_input_ = nullptr;
    check(cudaMemcpyAsync(dst.data() + offset, src.data(), src.size(), cudaMemcpyHostToDevice, stream_), "upload");
    check(cudaStreamSynchronize(stream_), "upload");
  }

  void read(std::span<std::byte> dst, const std::byte* src) override {
    activate();
    flush_pending_ops();
    if (dst.empty()) {
      check(cudaStreamSynchronize(stream_), "wait");
      return;
    }
    read_staging_.reserve(dst.size());
    check(cudaMemcpyAsync(read_staging_.data, src, dst.size(), cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaStreamSynchronize(stream_), "download");
    profile_.collect();
    std::memcpy(dst.data(), read_staging_.data, dst.size());
  }
  using Backend::read;

  void prepare(Weight& w, WeightUse use) override {
    const bool float_type = w.type_id == static_cast<uint32_t>(gguf::GgmlType::F32) ||
                            w.type_id == static_cast<uint32_t>(gguf::GgmlType::F16) ||
                            w.type_id == static_cast<uint32_t>(gguf::GgmlType::BF16);
    if (!float_type && !cuda::matvec_supports(w.type_id)) {
      throw std::runtime_error(w.name + ": type " + std::string(gguf::type_name(w.type_id)) + " has no CUDA kernels");
    }
    if (w.cols % 32 != 0) {
      throw std::runtime_error(w.name + ": rows of " + std::to_string(w.cols) +
                               " elements (the CUDA kernels need a multiple of 32)");
    }
    if (w.layout != 0) throw std::runtime_error(w.name + ": already prepared by another backend");
    Buffer device = allocate(w.data.size());
    write(device, 0, w.data);
    w.data = {device.data(), w.data.size()};
    w.owner = std::move(device.memory);
    // Products also read a repacked copy where the type has a faster layout (the GGUF bytes stay for lookups
    // and the f16 decode). It comes out of the same budget as the f16 copies, first: it is the smaller and
    // serves every decode step.
    const size_t repacked_bytes = cuda::kquant_repacked_row_bytes(w.type_id, w.cols) * static_cast<size_t>(w.rows);
    if (use == WeightUse::Matrix && repacked_bytes != 0 && repacked_bytes <= dense_budget_ && repack_) {
      Buffer repacked = allocate(repacked_bytes);
      cuda::repack_kquant(w.type_id, w.data.data(), w.row_bytes, w.rows, w.cols, repacked.data(), stream_);
      check_launch("repack weights");
      dense_budget_ -= repacked_bytes;
      w.repacked = std::move(repacked.memory);
    }
    const size_t dense_bytes = static_cast<size_t>(w.rows) * static_cast<size_t>(w.cols) * 2;
    if (!float_type && dense_bytes <= dense_budget_) {
      Buffer dense = allocate(dense_bytes);
      cuda::dequantize_f16(w.type_id, w.data.data(), w.row_bytes, w.rows, w.cols,
                           reinterpret_cast<uint16_t*>(dense.data()), stream_);
      check_launch("decode weights");
      dense_budget_ -= dense_bytes;
      w.dense = std::move(dense.memory);
    }
  }

  void upload_step(StepTables& step) override {
    activate();
    flush_pending_ops();
    f16_input_ = nullptr;
    const size_t n = step.positions.size();
    if (step.seq_of_row.size() != n) throw std::invalid_argument("step: positions and sequence ids differ in length");
    if (!step.tokens.empty() && step.tokens.size() != n) throw std::invalid_argument("step: tokens and positions differ");
    int max_context = 0;
    for (size_t i = 0; i < n; ++i) {
      const int32_t s = step.seq_of_row[i];
      if (s < 0 || static_cast<size_t>(s) >= step.tables.size()) throw std::invalid_argument("step: bad sequence id");
      const int32_t pos = step.positions[i];
      // Every position up to this one is read by attention, and this one is written: its table must cover it.
      if (pos < 0 || static_cast<size_t>(pos / kv_block_tokens_) >= step.tables[static_cast<size_t>(s)].size()) {
        throw std::out_of_range("position " + std::to_string(pos) + " has no KV block in its sequence's block table");
      }
      max_context = std::max(max_context, pos + 1);
    }
    // Rows of distinct sequences (every row decodes), checked for the few rows attention may take fresh
    // keys for (cuda::FreshKv).
    bool own_sequences = n <= 4;
    for (size_t i = 0; own_sequences && i < n; ++i) {
      for (size_t j = 0; j < i; ++j) own_sequences = own_sequences && step.seq_of_row[i] != step.seq_of_row[j];
    }
    size_t total_blocks = 0;
    for (const auto& t : step.tables) total_blocks += t.size();

    // One pinned staging area, one copy: [rope][tokens][positions][seq_of_row][logit_rows][table_start][blocks].
    // Only the block tables' length varies between steps of one shape, and they come last: a recorded step's
    // pointers into this area stay right.
    const size_t ints = step.tokens.size() + 2 * n + step.logit_rows.size() + step.tables.size() + total_blocks;
    const size_t rope_bytes = (step.rope.size_bytes() + 15) / 16 * 16;
    const size_t bytes = rope_bytes + ints * sizeof(int32_t);
    check(cudaEventSynchronize(upload_done_), "previous upload");  // the staging area is free again
    upload_staging_.reserve(bytes);
    if (upload_device_.bytes < bytes) {
      forget_graphs();  // before the old area is freed: recordings read it
      upload_device_ = allocate(std::max(bytes, 2 * upload_device_.bytes));
    }

    auto* host = reinterpret_cast<int32_t*>(upload_staging_.data + rope_bytes);
    const auto* dev = reinterpret_cast<const int32_t*>(upload_device_.data() + rope_bytes);
    size_t at = 0;
    auto put = [&](std::span<const int32_t> values) {
      const int32_t* where = dev + at;
      if (!values.empty()) std::memcpy(host + at, values.data(), values.size_bytes());
      at += values.size();
      return where;
    };
    upload_ = StepUpload{};
    upload_.tokens = put(step.tokens);
    upload_.positions = put(step.positions);
    upload_.seq_of_row = put(step.seq_of_row);
    upload_.logit_rows = put(step.logit_rows);
    int32_t* starts = host + at;
    upload_.table_start = dev + at;
    at += step.tables.size();
    int32_t next = 0;
    for (size_t s = 0; s < step.tables.size(); ++s) {
      starts[s] = next;
      next += static_cast<int32_t>(step.tables[s].size());
    }
    upload_.blocks = dev + at;
    for (const auto& t : step.tables) put(t);
    if (!step.rope.empty()) std::memcpy(upload_staging_.data, step.rope.data(), step.rope.size_bytes());
    upload_.rope = reinterpret_cast<const float*>(upload_device_.data());
    upload_.n_rows = static_cast<int>(n);
    upload_.max_context = (max_context + kContextBucket - 1) / kContextBucket * kContextBucket;
    upload_.rows_own_sequences = own_sequences;
    upload_.logit_rows_all = step.logit_rows.size() == n;
    for (size_t i = 0; upload_.logit_rows_all && i < n; ++i) {
      upload_.logit_rows_all = step.logit_rows[i] == static_cast<int32_t>(i);
    }
    check(cudaMemcpyAsync(upload_device_.data(), upload_staging_.data, bytes, cudaMemcpyHostToDevice, stream_),
          "step upload");
    check(cudaEventRecord(upload_done_, stream_), "step upload");
    step.uploaded = &upload_;
  }

  // One short prefill, then every shape a prefill of up to `longest` rows reaches cuBLAS as (gemm_rows).
  std::vector<int> warm_up_prefill_rows(int longest) const override {
    std::vector<int> rows = {std::min(32, longest)};
    for (int n = kGraphMaxRows; n < longest; n += kGemmRowStep) rows.push_back(n);
    rows.push_back(longest);
    return rows;
  }

  bool replay_step(const StepShape& shape) override {
    if (!graphs_enabled_ || shape.n_rows > kGraphMaxRows) return false;
    activate();
    const GraphKey key{shape, upload_.max_context, upload_.rows_own_sequences, upload_.logit_rows_all};
    for (RecordedStep& r : recorded_) {
      if (r.key == key) {
        check(cudaGraphLaunch(r.exec, stream_), "graph launch");
        r.last_use = ++graph_clock_;
        ++replayed_steps_;
        return true;
      }
    }
    // A shape seen once may be a one-off (a prefill); the second time it is recorded while it runs.
    if (std::find(seen_once_.begin(), seen_once_.end(), key) == seen_once_.end()) {
      if (seen_once_.size() >= kSeenOnceLimit) seen_once_.erase(seen_once_.begin());
      seen_once_.push_back(key);
      return false;
    }
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed), "begin step recording");
    recording_ = true;
    recording_key_ = key;
    allocations_at_recording_ = allocations_;
    return false;
  }

  void end_step(bool completed) override {
    if (completed) {
      flush_pending_ops();
    } else {
      held_.drop();
    }
    if (!recording_) return;
    recording_ = false;
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
    if (ended != cudaSuccess || !completed) {
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      if (completed) check(ended, "end step recording");
      return;
    }
    // The recorded ops have not run yet: they run now, as the first launch of the graph.
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(made, "instantiate step graph");
    const cudaError_t launched = cudaGraphLaunch(exec, stream_);
    // A buffer allocated while recording put its clearing into the graph, and the step may have used
    // scratch that has since moved: such a recording serves this step only.
    if (launched != cudaSuccess || allocations_ != allocations_at_recording_) {
      cudaStreamSynchronize(stream_);
      cudaGraphExecDestroy(exec);
      check(launched, "graph launch");
      return;
    }
    if (recorded_.size() >= kMaxGraphs) {
      auto oldest = std::min_element(recorded_.begin(), recorded_.end(),
                                     [](const RecordedStep& a, const RecordedStep& b) { return a.last_use < b.last_use; });
      cudaStreamSynchronize(stream_);
      cudaGraphExecDestroy(oldest->exec);
      recorded_.erase(oldest);
    }
    recorded_.push_back({recording_key_, exec, ++graph_clock_});
    ++recorded_steps_;
  }

  void matmul(const Weight& w, const float* x, int n, float* y) override {
    const ProfileScope scope(*this, "matmul");
    if (n <= 0) return;
    const size_t x_elems = static_cast<size_t>(n) * static_cast<size_t>(w.cols);
    const int rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
    const float one = 1.0f, zero = 0.0f;
    if (w.type_id == static_cast<uint32_t>(gguf::GgmlType::F32)) {
      // y^T (rows x n) = W (rows x cols, stored as cols x rows column-major) ^T * x^T (cols x n).
      check(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one, reinterpret_cast<const float*>(w.data.data()),
                        cols, x, cols, &zero, y, rows),
            "sgemm");
      return;
    }
    if (w.type_id == static_cast<uint32_t>(gguf::GgmlType::BF16)) {
      uint16_t* xb = scratch(act_half_, x_elems * 2);
      cuda::to_bf16(x, x_elems, xb, stream_);
      gemm_ex(w.data.data(), CUDA_R_16BF, xb, rows, n, cols, y);
      return;
    }
    const bool few_rows = takes_matvec(n);
    const int n_gemm = few_rows ? n : gemm_rows(n);
    const uint16_t* xh = half_input(x, x_elems, static_cast<size_t>(n_gemm) * static_cast<size_t>(w.cols));
    // A product written over its own input (never done by the model, but allowed) leaves no valid copy.
    if (y < x + x_elems && x < y + static_cast<size_t>(n) * static_cast<size_t>(w.rows)) f16_input_ = nullptr;
    // Padded rows go to scratch, and the first n rows to y.
    const size_t y_bytes = static_cast<size_t>(n) * static_cast<size_t>(w.rows) * sizeof(float);
    float* y_gemm = n_gemm == n ? y
                                : reinterpret_cast<float*>(scratch(padded_out_, static_cast<size_t>(n_gemm) *
                                                                                    static_cast<size_t>(w.rows) * 4));
    if (w.type_id == static_cast<uint32_t>(gguf::GgmlType::F16)) {
      if (!few_rows || !cuda::matvec_f16(w.data.data(), w.rows, w.cols, xh, n, y, stream_)) {
        gemm_ex(w.data.data(), CUDA_R_16F, xh, rows, n_gemm, cols, y_gemm);
      }
    } else if (few_rows) {
      cuda::matvec(w.type_id, w.data.data(), w.row_bytes, w.rows, w.cols, xh, n, y, w.repacked.get(), stream_);
    } else if (w.dense) {
      gemm_ex(w.dense.get(), CUDA_R_16F, xh, rows, n_gemm, cols, y_gemm);
    } else {
      uint16_t* wh = scratch(weight_half_, static_cast<size_t>(w.rows) * static_cast<size_t>(w.cols) * 2);
      cuda::dequantize_f16(w.type_id, w.data.data(), w.row_bytes, w.rows, w.cols, wh, stream_);
      gemm_ex(wh, CUDA_R_16F, xh, rows, n_gemm, cols, y_gemm);
    }
    if (y_gemm != y) check(cudaMemcpyAsync(y, y_gemm, y_bytes, cudaMemcpyDeviceToDevice, stream_), "padded product");
    check_launch("matmul");
  }

  // At a few rows, the matrices among them that one kernel takes together go through one launch: Q4_K ones
  // with any Q6_K one that has a repacked copy (Q, K and V of a Q4_K_M file, where V has more bits on half the
  // layers), or F16 ones. The others follow one by one, reading the same f16 copy of x.
  void matmul_same_input(std::span<const Weight* const> ws, const float* x, int n,
                         std::span<float* const> ys) override {
    constexpr size_t kMax = 3;
    std::array<cuda::SameInputProduct, kMax> together{};
    std::array<bool, kMax> taken{};
    size_t count = 0;
    const auto q4k = static_cast<uint32_t>(gguf::GgmlType::Q4_K), q6k = static_cast<uint32_t>(gguf::GgmlType::Q6_K),
               f16 = static_cast<uint32_t>(gguf::GgmlType::F16);
    const bool applies = same_input_kernel_ && takes_matvec(n) && ws.size() <= kMax && !ws.empty();
    // The F16 matrices go together where there are any (an F16 file), else the K-quant ones.
    const bool half = applies && std::any_of(ws.begin(), ws.end(), [&](const Weight* w) { return w->type_id == f16; });
    for (size_t i = 0; applies && i < ws.size(); ++i) {
      const Weight& w = *ws[i];
      const bool fits = w.cols == ws[0]->cols && (half ? w.type_id == f16
                                                       : w.type_id == q4k || (w.type_id == q6k && w.repacked));
      // An output over x would leave the f16 copy that the products read stale.
      const bool overwrites_x = ys[i] < x + static_cast<size_t>(n) * static_cast<size_t>(w.cols) &&
                                x < ys[i] + static_cast<size_t>(n) * static_cast<size_t>(w.rows);
      if (!fits || overwrites_x) continue;
      const bool q6 = w.type_id == q6k;
      together[count++] = {q6 ? w.repacked.get() : w.data.data(), w.rows, ys[i],
                           q6 ? cuda::kquant_repacked_row_bytes(q6k, w.cols) : w.row_bytes, q6};
      taken[i] = true;
    }
    // Q6_K alone is its own kernel's work.
    const bool any_q4 = std::any_of(together.begin(), together.begin() + static_cast<std::ptrdiff_t>(count),
                                    [](const cuda::SameInputProduct& p) { return !p.repacked_q6k; });
    bool launched = false;  // false where the kernel does not take the batch (it says which it takes)
    if (count >= 2 && any_q4) {
      const ProfileScope scope(*this, "matmul");
      const int64_t cols = ws[0]->cols;
      const uint16_t* xh = half_input(x, static_cast<size_t>(n) * static_cast<size_t>(cols));
      const std::span products(together.data(), count);
      launched = half ? cuda::matvec_f16_same_input(products, cols, xh, n, stream_)
                      : cuda::matvec_kquant_same_input(products, cols, xh, n, stream_);
      check_launch("matmul (same input)");
    }
    for (size_t i = 0; i < ws.size(); ++i) {
      if (!launched || !taken[i]) matmul(*ws[i], x, n, ys[i]);
    }
  }

  // At a few rows, Q4_K (or F16) gate and up matrices go through one kernel that also applies the gate (see
  // gated_matvec_kquant): one launch and one pass over the input where there were three. On 8B F16 at one
  // stream, with Q, K and V in one launch too: 218-219 tok/s before, 230-231 after (H200).
  void gated_matmul(const Weight& w_gate, const Weight& w_up, const float* x, int n, float* gate,
                    float* up) override {
    const bool quantized = w_gate.type_id == static_cast<uint32_t>(gguf::GgmlType::Q4_K);
    const bool half = w_gate.type_id == static_cast<uint32_t>(gguf::GgmlType::F16) && w_gate.cols % 32 == 0;
    const bool fused = gated_kernel_ && n >= 1 && n <= 8 && takes_matvec(n) && (quantized || half) &&
                       w_up.type_id == w_gate.type_id && w_up.rows == w_gate.rows && w_up.cols == w_gate.cols &&
                       w_up.row_bytes == w_gate.row_bytes;
    if (!fused) {
      Backend::gated_matmul(w_gate, w_up, x, n, gate, up);
      return;
    }
    const ProfileScope scope(*this, "gated_matmul");
    const size_t out_elems = static_cast<size_t>(n) * static_cast<size_t>(w_gate.rows);
    const uint16_t* xh = half_input(x, static_cast<size_t>(n) * static_cast<size_t>(w_gate.cols));
    uint16_t* out_half = scratch(gated_half_, out_elems * 2);
    if (quantized) {
      cuda::gated_matvec_kquant(w_gate.type_id, w_gate.data.data(), w_up.data.data(), w_gate.row_bytes, w_gate.rows,
                                w_gate.cols, xh, n, gate, out_half, stream_);
    } else {
      cuda::gated_matvec_f16(w_gate.data.data(), w_up.data.data(), w_gate.rows, w_gate.cols, xh, n, gate, out_half,
                             stream_);
    }
    check_launch("gated matmul");
    // The f16 gate is the next product's input: its buffer becomes act_half_, where products look for it.
    std::swap(act_half_, gated_half_);
    f16_input_ = gate;
    f16_input_elems_ = out_elems;
  }

  void embed(const Weight& table, const StepTables& step, float* out) override {
    const ProfileScope scope(*this, "embed");
    for (int32_t tok : step.tokens) {
      if (tok < 0 || tok >= table.rows) {
        throw std::out_of_range("token id " + std::to_string(tok) + " is outside the vocabulary of " +
                                std::to_string(table.rows));
      }
    }
    cuda::embed(table.type_id, table.data.data(), table.row_bytes, table.cols, uploaded(step).tokens,
                static_cast<int>(step.tokens.size()), out, stream_);
    check_launch("embed");
  }

  // The residual add the model issued just before, when it feeds this norm, is done by the norm's kernel, and
  // a gather of every row in order is read where the rows are (see HeldBackOps); the normalized rows are also
  // written in f16 for the products that read them next.
  void rmsnorm(const float* x, const float* gamma, int n_rows, int dim, float eps, float* out) override {
    const size_t elems = static_cast<size_t>(n_rows) * static_cast<size_t>(dim);
    if (held_.gather.out == x && held_.gather.elems == elems) {
      x = std::exchange(held_.gather, {}).x;  // the rows gathered are all of x, in order
    }
    const float* residual = nullptr;
    if (held_.add.x == x && held_.add.n == elems) residual = std::exchange(held_.add, {}).y;
    const ProfileScope scope(*this, "rmsnorm");
    uint16_t* half = scratch(act_half_, elems * 2);
    // x is written only with a residual, and then it is the add's own (non-const) destination.
    cuda::rmsnorm(const_cast<float*>(x), residual, gamma, n_rows, dim, eps, out, half, stream_);
    check_launch("rmsnorm");
    f16_input_ = out;
    f16_input_elems_ = elems;
  }

  // Held back: the model rotates the queries, then the keys, then stores keys and values; when store_kv comes
  // next for those keys, one kernel does all three (see rope_store_kv).
  void rope(float* x, int n_heads, int head_dim, int n_rot, bool neox, const StepTables& step) override {
    const ProfileScope scope(*this, "rope");
    held_.hold_rope({x, n_heads, head_dim, n_rot, neox, step.n_rows(), uploaded(step).rope}, stream_);
  }

  void store_kv(const KvLayerView& kv, const float* k, const float* v, const StepTables& step) override {
    const ProfileScope scope(*this, "store_kv");
    require_kv(kv);
    if (held_.n_ropes == 2) {
      const cuda::HeldBackOps::Rope& q = held_.ropes[0];
      const cuda::HeldBackOps::Rope& key = held_.ropes[1];
      if (key.x == k && key.n_heads == kv.n_kv_heads && key.head_dim == kv.head_dim && q.head_dim == kv.head_dim &&
          q.n_rot == key.n_rot && q.neox == key.neox && q.n_rows == step.n_rows() && key.n_rows == step.n_rows() &&
          q.x != k) {
        float* qx = q.x;
        const int q_heads = q.n_heads, n_rot = q.n_rot;
        const bool neox = q.neox;
        held_.n_ropes = 0;
        // When attention comes next for these queries, it rotates and stores them itself (cuda::FreshKv).
        if (fresh_kv_ && uploaded(step).rows_own_sequences &&
            cuda::attention_takes_fresh_kv(kv, q_heads, step.n_rows())) {
          held_.fresh = {qx, q_heads, k, v, n_rot, neox, kv};
          return;
        }
        cuda::rope_store_kv(kv, qx, q_heads, const_cast<float*>(k), v, n_rot, neox, uploaded(step), stream_);
        check_launch("rope + store_kv");
        return;
      }
    }
    held_.flush_ropes(stream_);
    cuda::store_kv(kv, k, v, uploaded(step), stream_);
    check_launch("store_kv");
  }

  void attention(const float* q, int n_heads, const KvLayerView& kv, const StepTables& step, float scale,
                 float* out) override {
    const ProfileScope scope(*this, "attention");
    require_kv(kv);
    if (n_heads % kv.n_kv_heads != 0) throw std::invalid_argument("attention heads must be a multiple of KV heads");
    if (n_heads / kv.n_kv_heads > 32) throw std::invalid_argument("attention: more than 32 query heads per KV head");
    const StepUpload& up = uploaded(step);
    cuda::FreshKv fresh;
    if (held_.fresh.q == q && held_.fresh.q_heads == n_heads && held_.fresh.kv.k == kv.k) {
      const cuda::HeldBackOps::Fresh f = std::exchange(held_.fresh, {});
      fresh = {f.k, f.v, f.n_rot, f.neox};
    }
    held_.flush_fresh(up, stream_);  // held back for other queries: their own kernel first
    const int splits = cuda::attention_splits(kv, n_heads, up.n_rows, up.max_context, props_.multiProcessorCount);
    // (max_context is rounded up by upload_step, so that steps a few tokens apart share a recording; a split
    // past a row's own context contributes nothing.)
    const size_t floats = cuda::attention_split_floats(up.n_rows, n_heads, kv.head_dim, splits);
    float* scratch_floats = floats ? reinterpret_cast<float*>(scratch(attention_split_, floats * sizeof(float))) : nullptr;
    const size_t out_elems = static_cast<size_t>(up.n_rows) * static_cast<size_t>(n_heads) * kv.head_dim;
    uint16_t* half = scratch(act_half_, out_elems * 2);
    cuda::attention(q, n_heads, kv, up, scale, out, half, splits, scratch_floats, fresh, stream_);
    check_launch("attention");
    f16_input_ = out;  // the output projection reads the f16 copy written alongside
    f16_input_elems_ = out_elems;
  }

  void silu_mul(float* gate, const float* up, size_t n) override {
    const ProfileScope scope(*this, "silu_mul");
    uint16_t* half = scratch(act_half_, n * 2);
    cuda::silu_mul(gate, up, n, half, stream_);
    check_launch("silu_mul");
    f16_input_ = gate;
    f16_input_elems_ = n;
  }
  // Held back one op: when the next op is the norm of x, the norm's kernel adds it (see rmsnorm).
  void add(float* x, const float* y, size_t n) override {
    const ProfileScope scope(*this, "add");
    held_.add = {x, y, n};
  }
  void add_rows(float* x, const float* bias, int n_rows, int dim) override {
    const ProfileScope scope(*this, "add_rows");
    cuda::add_rows(x, bias, n_rows, dim, stream_);
    check_launch("add_rows");
  }
  // Every row in order (a decoding step's final rows) is held back: the norm that reads them next reads x
  // itself, and adds the last layer's residual there too (one kernel where there were three).
  void gather_rows(const float* x, int dim, const StepTables& step, float* out) override {
    if (uploaded(step).logit_rows_all && held_.gather.x == nullptr) {
      held_.gather = {x, out, dim, static_cast<size_t>(step.n_rows()) * static_cast<size_t>(dim)};
      return;
    }
    const ProfileScope scope(*this, "gather_rows");
    cuda::gather_rows(x, dim, uploaded(step).logit_rows, static_cast<int>(step.logit_rows.size()), out, stream_);
    check_launch("gather_rows");
  }

  void top_logits(const float* logits, int n_rows, int vocab, TopLogits* out) override {
    const ProfileScope scope(*this, "top_logits");
    void* heads = scratch(top_logits_scratch_, cuda::top_logits_scratch_bytes(n_rows, vocab));
    cuda::top_logits(logits, n_rows, vocab, out, heads, stream_);
    check_launch("top_logits");
  }

 private:
  void activate() const { check(cudaSetDevice(index_), "select device"); }

  const StepUpload& uploaded(const StepTables& step) const {
    if (step.uploaded != &upload_) throw std::logic_error("CUDA op given a step that upload_step did not upload");
    return upload_;
  }

  static void require_kv(const KvLayerView& kv) {
    if (kv.head_dim > 256) throw std::invalid_argument("attention: head size over 256");
    if (kv.block_tokens != kv_block_tokens_) throw std::invalid_argument("KV blocks of an unexpected size");
    if (kv.element == KvElement::Q8_0 && kv.head_dim % 32 != 0) {
      throw std::invalid_argument("a Q8_0 KV cache needs head_dim a multiple of 32");
    }
  }

  // y[n][rows] = x[n][cols] * W^T with W (rows x cols, row-major) and x in 16-bit `type`, f32 accumulation.
  void gemm_ex(const void* w, cudaDataType type, const void* x, int rows, int n, int cols, float* y) {
    const float one = 1.0f, zero = 0.0f;
    check(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one, w, type, cols, x, type, cols, &zero, y,
                       CUDA_R_32F, rows, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT),
          "gemm");
  }

  // cuBLAS chooses its algorithm for each new shape the first time it sees it: a fresh server's first
  // 129-row prefill (a 128-word prompt and its BOS) took 16 ms where the next took 2.4 (1B Q4_K_M, H200).
  // Above the rows a recorded step may have, products go to cuBLAS in multiples of 16 rows (the extra rows
  // read stale activations and are dropped), so that a few shapes serve every prefill and a server's warm-up
  // meets them all (warm_up_prefill_rows). Prefill is bound by arithmetic on an H200 (8B: ~17k tok/s from 128
  // rows up), so the extra rows cost their share: multiples of 64 made a 129-row prefill 11 ms instead of 8.
  static constexpr int kGemmRowStep = 16;
  static int gemm_rows(int n) {
    return n > kGraphMaxRows ? (n + kGemmRowStep - 1) / kGemmRowStep * kGemmRowStep : n;
  }

  // Products of up to this many activation rows read the weights in place (the matvec kernels), larger ones go
  // to cuBLAS.
  bool takes_matvec(int n) const { return n <= (matvec_rows_ > 0 ? matvec_rows_ : kMatvecMaxRows); }

  // x in f16 for a product: Q, K and V (and gate and up) multiply the same input, and norms, attention and the
  // gate leave an f16 copy of their output, so it is converted only when no copy is there.
  const uint16_t* half_input(const float* x, size_t elems, size_t room = 0) {
    uint16_t* xh = scratch(act_half_, std::max(elems, room) * 2);
    if (x != f16_input_ || elems != f16_input_elems_) {
      cuda::to_f16(x, elems, xh, stream_);
      f16_input_ = x;
      f16_input_elems_ = elems;
    }
    return xh;
  }

  // A scratch buffer of at least `bytes`, grown (never shrunk) as batches grow. Recorded steps name the old
  // buffer: they go with it.
  uint16_t* scratch(Buffer& buf, size_t bytes) {
    if (buf.bytes < bytes) {
      forget_graphs();
      buf = allocate(bytes);
      if (&buf == &act_half_) f16_input_ = nullptr;
    }
    return reinterpret_cast<uint16_t*>(buf.data());
  }

  struct ProfileScope {
    cuda::OpProfile& profile;
    // Every op but the products writes activations, so the f16 copy of the last product's input may be stale
    // after it.
    ProfileScope(CudaBackend& b, const char* name) : profile(b.profile_) {
      // What the op did not take of the held-back ones (see its own code) is launched before it.
      b.held_.flush_add(b.stream_);
      const std::string_view op(name);
      if (op != "rope" && op != "store_kv") b.held_.flush_ropes(b.stream_);
      if (op != "attention") b.held_.flush_fresh(b.upload_, b.stream_);
      b.held_.flush_gather(b.upload_, b.stream_);
      if (op != "matmul" && op != "gated_matmul") b.f16_input_ = nullptr;
      profile.begin(name);
    }
    ~ProfileScope() { profile.end(); }
  };

  // Recorded steps (CUDA graphs), looked up by shape and rounded context; the least recently used goes first.
  struct GraphKey {
    StepShape shape;
    int context = 0;
    bool rows_own_sequences = false;  // the recording may have attention take fresh keys
    bool logit_rows_all = false;      // ... and the final norm read the last rows in place
    friend bool operator==(const GraphKey&, const GraphKey&) = default;
  };
  struct RecordedStep {
    GraphKey key;
    cudaGraphExec_t exec = nullptr;
    uint64_t last_use = 0;
  };
  // (Never while recording in practice: a shape is recorded the second time it runs, when the first has grown
  // every buffer it needs; a stream that is recording cannot be waited on.)
  void forget_graphs() {
    if (recorded_.empty()) return;
    if (!recording_) cudaStreamSynchronize(stream_);
    for (RecordedStep& r : recorded_) cudaGraphExecDestroy(r.exec);
    recorded_.clear();
    seen_once_.clear();
  }
  static constexpr int kGraphMaxRows = 64;
  static constexpr size_t kMaxGraphs = 128;
  static constexpr size_t kSeenOnceLimit = 1024;
  static constexpr int kContextBucket = 256;
  bool graphs_enabled_ = true;
  bool recording_ = false;
  GraphKey recording_key_;
  uint64_t allocations_ = 0, allocations_at_recording_ = 0, graph_clock_ = 0, recorded_steps_ = 0, replayed_steps_ = 0;
  std::vector<RecordedStep> recorded_;
  std::vector<GraphKey> seen_once_;
  Buffer blas_workspace_;

  // Everything held back, issued before the host reads or writes device memory or a new step's tables
  // replace those the held-back ops point at.
  void flush_pending_ops() { held_.flush_all(upload_, stream_); }
  cuda::HeldBackOps held_;

  static constexpr int kv_block_tokens_ = 16;
  static constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;
  static constexpr size_t kDenseShareOfFreeMemory = 40;  // percent  // kv::kBlockTokens; the backend room does not see kv/
  int index_;
  size_t dense_budget_ = 0;
  int matvec_rows_ = 0;  // 0: kMatvecMaxRows
  bool repack_ = true;        // PENSIEVE_CUDA_REPACK=0: products read Q6_K in its GGUF layout
  bool gated_kernel_ = true;  // PENSIEVE_CUDA_GATED=0: gate and up as two products and silu_mul
  bool same_input_kernel_ = true;  // PENSIEVE_CUDA_SAME_INPUT=0: Q, K and V as three launches
  bool fresh_kv_ = true;  // PENSIEVE_CUDA_FRESH_KV=0: decoding steps rotate and store keys in a kernel of their own
  cuda::OpProfile profile_;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  cudaEvent_t upload_done_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::shared_ptr<std::atomic<uint64_t>> allocated_ = std::make_shared<std::atomic<uint64_t>>(0);
  PinnedBuffer upload_staging_, read_staging_;
  Buffer upload_device_, act_half_, gated_half_, weight_half_, attention_split_, top_logits_scratch_, padded_out_;
  const float* f16_input_ = nullptr;  // act_half_ holds this activation matrix in f16 (null: nothing valid)
  size_t f16_input_elems_ = 0;
  StepUpload upload_;
};

}  // namespace

std::string cuda_unavailable_reason(int index) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable CUDA driver (") + cudaGetErrorString(e) + ")";
  }
  if (count == 0) return "no CUDA GPU found";
  if (index < 0 || index >= count) {
    return "cuda:" + std::to_string(index) + " does not exist (" + std::to_string(count) + " GPU" +
           (count == 1 ? "" : "s") + " found)";
  }
  return {};
}

std::unique_ptr<Backend> make_cuda_backend(int index) {
  if (const std::string why = cuda_unavailable_reason(index); !why.empty()) throw std::runtime_error(why);
  return std::make_unique<CudaBackend>(index);
}

}  // namespace pensieve::backend
