#pragma once
// A persistent pool: run(fn) calls fn(thread_index, n_threads) once on every thread (the caller is thread 0)
// and returns when all are done. Workers spin briefly before sleeping, because ops arrive back to back in a
// forward pass and a futex wake per op would cost more than many small ops.
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
  void run(const std::function<void(int thread, int n_threads)>& fn);

  // Splits [0, n) into contiguous ranges, one per thread, aligned to `grain`.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& body) {
    run([&](int t, int nt) {
      int64_t chunks = (n + grain - 1) / grain;
      int64_t begin = chunks * t / nt * grain;
      int64_t end = chunks * (t + 1) / nt * grain;
      if (end > n) end = n;
      if (begin < end) body(begin, end, t);
    });
  }

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace pensieve::backend::cpu
