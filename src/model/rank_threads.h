#pragma once
// A thread per tensor-parallel rank, kept for the model's life: every op of rank r runs on thread r (a GPU's
// device and stream stay bound to one thread, and each rank's collectives are called from its own thread,
// as NCCL wants when one process drives several GPUs).
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pensieve::model {

class RankThreads {
 public:
  explicit RankThreads(int n_ranks);
  ~RankThreads();
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  // Runs job(r) on thread r for every rank and waits for all of them. When a job throws, `on_failure` runs
  // once at that moment (so that ranks waiting for the failed one in a collective are released), and the
  // first exception is rethrown here after every rank has returned.
  void run(const std::function<void(int)>& job, const std::function<void()>& on_failure);

 private:
  void loop(int rank);

  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int)>* job_ = nullptr;
  const std::function<void()>* on_failure_ = nullptr;
  uint64_t generation_ = 0;
  int running_ = 0;
  bool stopping_ = false;
  std::exception_ptr first_error_;
  std::vector<std::thread> threads_;
};

}  // namespace pensieve::model
