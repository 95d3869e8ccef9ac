// The in-process communicator: the ranks are threads sharing the host's memory, so a collective is a
// rendezvous of pointers followed by plain reads and writes. All-reduce: after the first barrier every rank
// sums its own stripe of the elements over all ranks' buffers, in rank order, and writes the sum back into
// every buffer (stripes are disjoint, so no element is touched by two threads); the second barrier keeps
// any rank from leaving before the others have finished with its buffer.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/communicator.h"

namespace pensieve::backend {
namespace {

class ThreadGroup {
 public:
  explicit ThreadGroup(int world) : world_(world), floats_(static_cast<size_t>(world)), sends_(static_cast<size_t>(world)),
                                    recvs_(static_cast<size_t>(world)), sizes_(static_cast<size_t>(world)) {}

  int world() const { return world_; }

  void all_reduce_sum(int rank, float* data, size_t n) {
    floats_[static_cast<size_t>(rank)] = data;
    sizes_[static_cast<size_t>(rank)] = n;
    barrier();
    require_same_size("all_reduce_sum");
    const size_t begin = n * static_cast<size_t>(rank) / static_cast<size_t>(world_);
    const size_t end = n * static_cast<size_t>(rank + 1) / static_cast<size_t>(world_);
    for (size_t i = begin; i < end; ++i) {
      float sum = floats_[0][i];
      for (size_t r = 1; r < floats_.size(); ++r) sum += floats_[r][i];
      for (float* buffer : floats_) buffer[i] = sum;
    }
    barrier();
  }

  void all_gather(int rank, const void* send, size_t bytes, void* recv) {
    sends_[static_cast<size_t>(rank)] = send;
    recvs_[static_cast<size_t>(rank)] = recv;
    sizes_[static_cast<size_t>(rank)] = bytes;
    barrier();
    require_same_size("all_gather");
    // Each rank writes its own piece into every receiver: the pieces are disjoint.
    for (void* target : recvs_) {
      auto* where = static_cast<std::byte*>(target) + static_cast<size_t>(rank) * bytes;
      if (where != send && bytes > 0) std::memmove(where, send, bytes);
    }
    barrier();
  }

  void abort() {
    {
      std::lock_guard lock(mutex_);
      aborted_ = true;
    }
    changed_.notify_all();
  }

 private:
  void barrier() {
    std::unique_lock lock(mutex_);
    if (aborted_) throw std::runtime_error("tensor parallel: another rank failed, the group is stopped");
    const uint64_t generation = generation_;
    if (++arrived_ == world_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    changed_.wait(lock, [&] { return generation_ != generation || aborted_; });
    if (generation_ == generation) throw std::runtime_error("tensor parallel: another rank failed, the group is stopped");
  }

  void require_same_size(const char* what) const {
    if (std::adjacent_find(sizes_.begin(), sizes_.end(), std::not_equal_to<>()) != sizes_.end()) {
      throw std::logic_error(std::string(what) + ": the ranks passed different sizes");
    }
  }

  const int world_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  // Posted by each rank before the first barrier of a collective, read by all after it.
  std::vector<float*> floats_;
  std::vector<const void*> sends_;
  std::vector<void*> recvs_;
  std::vector<size_t> sizes_;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<ThreadGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_->world(); }
  std::string name() const override { return "threads"; }
  void all_reduce_sum(float* data, size_t n) override { group_->all_reduce_sum(rank_, data, n); }
  void all_gather(const void* send, size_t bytes, void* recv) override { group_->all_gather(rank_, send, bytes, recv); }
  void abort() override { group_->abort(); }

 private:
  std::shared_ptr<ThreadGroup> group_;
  int rank_;
};

// Ranks whose memory the host cannot read directly but that NCCL cannot join either (several ranks on one
// GPU): each collective copies the rank's buffer to the host, meets the other ranks there as above, and copies
// the result back. Slow (two synchronous copies per collective); it lets the sharded forward of a GPU backend
// be tested on a machine with fewer GPUs than ranks.
class StagedCommunicator final : public Communicator {
 public:
  StagedCommunicator(std::shared_ptr<ThreadGroup> group, int rank, Backend& backend)
      : group_(std::move(group)), rank_(rank), backend_(backend) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_->world(); }
  std::string name() const override { return "host-staged"; }

  void all_reduce_sum(float* data, size_t n) override {
    send_.resize(n * sizeof(float));
    backend_.read(std::span(send_), reinterpret_cast<const std::byte*>(data));
    group_->all_reduce_sum(rank_, reinterpret_cast<float*>(send_.data()), n);
    backend_.write(device_view(data, send_.size()), 0, send_);
  }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    send_.resize(bytes);
    recv_.resize(bytes * static_cast<size_t>(group_->world()));
    backend_.read(std::span(send_), static_cast<const std::byte*>(send));
    group_->all_gather(rank_, send_.data(), bytes, recv_.data());
    backend_.write(device_view(recv, recv_.size()), 0, recv_);
  }

  void abort() override { group_->abort(); }

 private:
  // A Buffer naming memory the backend owns elsewhere (no ownership taken), for Backend::write.
  static Buffer device_view(void* p, size_t bytes) {
    return Buffer{std::shared_ptr<std::byte>(std::shared_ptr<std::byte>(), static_cast<std::byte*>(p)), bytes};
  }

  std::shared_ptr<ThreadGroup> group_;
  int rank_;
  Backend& backend_;
  std::vector<std::byte> send_, recv_;  // host staging; float-aligned (operator new)
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_staged_communicators(std::span<Backend* const> ranks) {
  if (ranks.empty()) throw std::invalid_argument("a communicator group needs at least one rank");
  auto group = std::make_shared<ThreadGroup>(static_cast<int>(ranks.size()));
  std::vector<std::unique_ptr<Communicator>> out;
  for (size_t r = 0; r < ranks.size(); ++r) out.push_back(std::make_unique<StagedCommunicator>(group, static_cast<int>(r), *ranks[r]));
  return out;
}

std::vector<std::unique_ptr<Communicator>> make_thread_communicators(int world_size) {
  if (world_size < 1) throw std::invalid_argument("a communicator group needs at least one rank");
  auto group = std::make_shared<ThreadGroup>(world_size);
  std::vector<std::unique_ptr<Communicator>> ranks;
  for (int r = 0; r < world_size; ++r) ranks.push_back(std::make_unique<ThreadCommunicator>(group, r));
  return ranks;
}

}  // namespace pensieve::backend
