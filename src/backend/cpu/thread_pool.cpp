#include "backend/cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#define PENSIEVE_PAUSE() _mm_pause()
#else
#define PENSIEVE_PAUSE() std::this_thread::yield()
#endif

namespace pensieve::backend::cpu {

namespace {
constexpr int kSpinIterations = 20000;
constexpr int64_t kChunksPerThread = 4;  // enough to even out uneven progress, few enough to stay cheap
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::clamp(n_threads, 1, 4096)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    body(0, n, 0);
    return;
  }
  const int64_t target = (n + n_threads_ * kChunksPerThread - 1) / (n_threads_ * kChunksPerThread);
  chunk_ = (target + grain - 1) / grain * grain;
  n_chunks_ = (n + chunk_ - 1) / chunk_;  // at most n_threads_ * kChunksPerThread: fits the 16-bit claim fields
  n_ = n;
  body_ = &body;
  completed_.store(0, std::memory_order_relaxed);
  uint32_t gen;
  {
    std::lock_guard lock(mutex_);
    gen = generation_.load() + 1;
    claim_.store(static_cast<uint64_t>(gen) << 32 | static_cast<uint64_t>(n_chunks_) << 16, std::memory_order_release);
    generation_.store(gen, std::memory_order_release);
  }
  wake_.notify_all();
  work_on(gen, 0);
  for (int spins = 0; completed_.load(std::memory_order_acquire) != n_chunks_; ++spins) {
    if (spins < kSpinIterations) {
      PENSIEVE_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::work_on(uint32_t generation, int thread) {
  for (;;) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    if (static_cast<uint32_t>(c >> 32) != generation) return;
    const int64_t index = static_cast<int64_t>(c & 0xFFFFu);
    if (index >= static_cast<int64_t>((c >> 16) & 0xFFFFu)) return;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
    // The caller cannot leave parallel_for (and so cannot change body_) before this chunk completes.
    const int64_t begin = index * chunk_;
    (*body_)(begin, std::min(n_, begin + chunk_), thread);
    completed_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      PENSIEVE_PAUSE();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    work_on(seen, index);
  }
}

}  // namespace pensieve::backend::cpu
