#include "model/rank_threads.h"

namespace pensieve::model {

RankThreads::RankThreads(int n_ranks) {
  for (int r = 0; r < n_ranks; ++r) threads_.emplace_back([this, r] { loop(r); });
}

RankThreads::~RankThreads() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void RankThreads::run(const std::function<void(int)>& job, const std::function<void()>& on_failure) {
  std::unique_lock lock(mutex_);
  job_ = &job;
  on_failure_ = &on_failure;
  first_error_ = nullptr;
  running_ = static_cast<int>(threads_.size());
  ++generation_;
  start_.notify_all();
  done_.wait(lock, [&] { return running_ == 0; });
  job_ = nullptr;
  on_failure_ = nullptr;
  if (first_error_) std::rethrow_exception(first_error_);
}

void RankThreads::loop(int rank) {
  uint64_t seen = 0;
  std::unique_lock lock(mutex_);
  for (;;) {
    start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    const std::function<void(int)>& job = *job_;
    const std::function<void()>& on_failure = *on_failure_;
    lock.unlock();
    std::exception_ptr error;
    try {
      job(rank);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !first_error_) {
      first_error_ = error;
      lock.unlock();
      on_failure();  // outside the lock: it may wake ranks that then finish and take it
      lock.lock();
    }
    if (--running_ == 0) done_.notify_all();
  }
}

}  // namespace pensieve::model
