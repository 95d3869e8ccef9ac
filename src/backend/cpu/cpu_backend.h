#pragma once
// The CPU implementation of the op interface: a persistent thread pool splitting output rows, kernels chosen
// by cpuid. Scratch (quantized activations, dequantized weight rows, attention state) grows to the largest
// request seen and is then reused, so steady-state forward passes allocate nothing.
#include <atomic>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"

namespace pensieve::backend::cpu {

class CpuBackend final : public Backend {
 public:
  // interleave: prepare() re-lays Q4_0/Q8_0/Q4_K/Q6_K matrices out in groups of eight rows when the table has kernels
  // for that (interleaved_weights.h).
  CpuBackend(int threads, const KernelTable& kernels, bool interleave = true);

  std::string name() const override;
  int threads() const override { return pool_.size(); }
  const KernelTable& kernels() const { return kernels_; }

  DeviceInfo device_info() const override;
  bool host_memory() const override { return true; }
  double measure_bandwidth() override;
  Buffer allocate(size_t bytes) override;
  void write(const Buffer& dst, size_t offset, std::span<const std::byte> src) override;
  void read(std::span<std::byte> dst, const std::byte* src) override;
  using Backend::read;

  void prepare(Weight& w, WeightUse use) override;
  void matmul(const Weight& w, const float* x, int n, float* y) override;
  void embed(const Weight& table, const StepTables& step, float* out) override;
  void rmsnorm(const float* x, const float* gamma, int n_rows, int dim, float eps, float* out) override;
  void rope(float* x, int n_heads, int head_dim, int n_rot, bool neox, const StepTables& step) override;
  void store_kv(const KvLayerView& kv, const float* k, const float* v, const StepTables& slots) override;
  void attention(const float* q, int n_heads, const KvLayerView& kv, const StepTables& slots, float scale,
                 float* out) override;
  void silu_mul(float* gate, const float* up, size_t n) override;
  void add(float* x, const float* y, size_t n) override;
  void add_rows(float* x, const float* bias, int n_rows, int dim) override;
  void gather_rows(const float* x, int dim, const StepTables& step, float* out) override;
  void top_logits(const float* logits, int n_rows, int vocab, TopLogits* out) override;

 private:
  void matmul_f32(const Weight& w, const float* x, int n, float* y);
  void matmul_bf16(const Weight& w, const float* x, int n, float* y);
  // rows4 (may be null) takes the weight rows four at a time; vec takes the rest.
  void matmul_int8(const Weight& w, VecDotQ8 vec, const float* x, int n, float* y, VecDotQ8Rows4 rows4 = nullptr);
  // An interleaved matrix: `x8` takes its eight-row groups.
  void matmul_interleaved(const Weight& w, VecDotQ8 x8, const float* x, int n, float* y);
  // x quantized to int8 blocks in act_q8_, one activation row per `cols / 32` blocks.
  Q8Block* quantize_activations(const float* x, int n, int cols);
  void matmul_dequantized(const Weight& w, const float* x, int n, float* y);
  // Runs body over [0, n) on the pool, or inline when `macs` (the work) is too small to repay a wake-up.
  template <typename F>
  void split(double macs, int64_t n, int64_t grain, F&& body) {
    if (macs < kMinParallelMacs || pool_.size() == 1) {
      if (n > 0) body(int64_t{0}, n, 0);
    } else {
      // One captured reference keeps the std::function in its small buffer: no allocation per op.
      pool_.parallel_for(n, grain, [&body](int64_t b, int64_t e, int t) { body(b, e, t); });
    }
  }
  // Waking a worker costs microseconds (far more on an oversubscribed machine); small ops cannot repay it.
  static constexpr double kMinParallelMacs = 1 << 17;
  float* thread_scratch(int thread) { return scratch_[static_cast<size_t>(thread)].data(); }
  void ensure_thread_scratch(size_t floats);

  const KernelTable& kernels_;
  std::shared_ptr<std::atomic<uint64_t>> allocated_bytes_ = std::make_shared<std::atomic<uint64_t>>(0);
  bool interleave_;
  ThreadPool pool_;
  std::vector<Q8Block> act_q8_;
  std::vector<uint16_t> act_bf16_;
  std::vector<std::byte> embed_row_;
  std::vector<std::vector<float>> scratch_;  // one per thread
};

}  // namespace pensieve::backend::cpu
