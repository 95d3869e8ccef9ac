#pragma once
// Device time per op kind (PENSIEVE_CUDA_PROFILE=1): CUDA events around each op, summed whenever the backend
// synchronizes and printed when it is destroyed. It adds event records to every op, so it is for finding
// where the time goes, not for measuring throughput.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pensieve::backend::cuda {

class OpProfile {
 public:
  OpProfile() = default;
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;
  ~OpProfile() { collect(); }

  void enable(bool on, cudaStream_t stream) {
    enabled_ = on;
    stream_ = stream;
  }
  void begin(const char* name) {
    if (!enabled_) return;
    Pending p{name, nullptr, nullptr};
    cudaEventCreate(&p.start);
    cudaEventCreate(&p.stop);
    cudaEventRecord(p.start, stream_);
    pending_.push_back(p);
  }
  void end() {
    if (enabled_ && !pending_.empty()) cudaEventRecord(pending_.back().stop, stream_);
  }
  // Adds up the ops recorded so far (waits for them).
  void collect() {
    for (Pending& p : pending_) {
      float ms = 0;
      cudaEventSynchronize(p.stop);
      cudaEventElapsedTime(&ms, p.start, p.stop);
      Total& t = totals_[p.name];
      t.ms += ms;
      t.calls += 1;
      cudaEventDestroy(p.start);
      cudaEventDestroy(p.stop);
    }
    pending_.clear();
  }
  void print(FILE* out) {
    if (!enabled_) return;
    collect();
    double all = 0;
    for (const auto& [name, t] : totals_) all += t.ms;
    std::fprintf(out, "pensieve: CUDA op time, %.1f ms in all\n", all);
    for (const auto& [name, t] : totals_) {
      std::fprintf(out, "  %-12s %10.2f ms %9llu calls %9.1f us/call %5.1f%%\n", name.c_str(), t.ms,
                   static_cast<unsigned long long>(t.calls), 1e3 * t.ms / static_cast<double>(t.calls),
                   100.0 * t.ms / all);
    }
  }

 private:
  struct Pending {
    const char* name;
    cudaEvent_t start, stop;
  };
  struct Total {
    double ms = 0;
    uint64_t calls = 0;
  };
  bool enabled_ = false;
  cudaStream_t stream_ = nullptr;
  std::vector<Pending> pending_;
  std::map<std::string, Total> totals_;
};

}  // namespace pensieve::backend::cuda
