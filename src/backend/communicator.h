#pragma once
// Collectives between the ranks of a tensor-parallel group: one Communicator per rank, each used only by that
// rank's thread. Buffers live in the rank's backend memory; a collective is ordered after the ops that rank
// issued before it and before the ops it issues after (on a GPU: enqueued on the backend's stream). Every rank
// calls the same collectives in the same order with the same sizes.
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"

namespace pensieve::backend {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string name() const = 0;  // "threads", "nccl"
  // data[i] = the sum over ranks of their data[i], in place; every rank ends with the same values.
  virtual void all_reduce_sum(float* data, size_t n) = 0;
  // recv[r * bytes, (r + 1) * bytes) = rank r's `send`, on every rank (recv holds world_size() * bytes).
  virtual void all_gather(const void* send, size_t bytes, void* recv) = 0;
  // A rank failed and will not reach the next collective: ranks waiting in one (now or later) throw
  // std::runtime_error instead of waiting for ever. The group cannot be used afterwards.
  virtual void abort() = 0;
};

// One communicator per rank over threads of this process, for backends whose memory is the host's (the CPU):
// the sums run in rank order, so every rank gets bit-identical results. Throws std::invalid_argument for
// fewer than one rank.
std::vector<std::unique_ptr<Communicator>> make_thread_communicators(int world_size);

// One communicator per rank for backends whose memory the host cannot read (GPUs): every collective goes
// through host copies (Backend::read / write) and the threads' rendezvous. Slow; for ranks sharing one GPU,
// which NCCL cannot join (tests of the split on a machine with fewer GPUs than ranks).
std::vector<std::unique_ptr<Communicator>> make_staged_communicators(std::span<Backend* const> ranks);

// The group for `ranks` (rank r runs on ranks[r]): over threads when every backend's memory is the host's;
// over NCCL when every backend is a CUDA device, no two on one device, and this build has NCCL; host-staged
// when GPU ranks share a device. Throws std::runtime_error (one line) otherwise.
std::vector<std::unique_ptr<Communicator>> make_communicators(std::span<Backend* const> ranks);

// Why NCCL cannot be used by this build (empty when it can).
std::string nccl_unavailable_reason();

}  // namespace pensieve::backend
