#pragma once
// A persistent pool for data-parallel loops. parallel_for cuts [0, n) into chunks that the caller and the
// workers claim one at a time, so a worker that is slow to wake (a busy, oversubscribed machine) never holds
// the caller up: whoever is running takes the next chunk. Workers spin briefly before sleeping, because ops
// arrive back to back in a forward pass.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pensieve::backend::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls body(begin, end, thread) over disjoint ranges covering [0, n); range bounds are multiples of
  // `grain` (except the last end). `thread` < size() identifies the calling thread (for per-thread scratch).
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& body);

 private:
  void worker(int index);
  void work_on(uint32_t generation, int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  // The current job; written by the caller before it publishes `claim_`, read by whoever claims a chunk.
  const std::function<void(int64_t, int64_t, int)>* body_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
  int64_t n_chunks_ = 0;
  // Bits 63..32: job generation; 31..16: the job's chunk count; 15..0: next chunk. Claiming is one CAS, so a
  // worker waking late can never claim a chunk of a job other than the one it read.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> completed_{0};
  std::atomic<uint32_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace pensieve::backend::cpu
