// NCCL all-reduce and all-gather on each rank's own CUDA stream, so that a collective sits in the stream
// between the ops before and after it and the host never waits for it. One process drives every GPU: the
// group is made at once with ncclCommInitAll, and each rank's thread then calls only its own communicator
// (NCCL needs no group calls when every rank has its own thread).
#include "backend/cuda/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>

namespace pensieve::backend {
namespace {

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string("NCCL: ") + what + ": " + ncclGetErrorString(r));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int world, int device, cudaStream_t stream)
      : comm_(comm), rank_(rank), world_(world), device_(device), stream_(stream) {}
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  ~NcclCommunicator() override {
    if (!comm_) return;
    cudaSetDevice(device_);
    if (aborted_) ncclCommAbort(comm_);
    else ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string name() const override { return "nccl"; }

  void all_reduce_sum(float* data, size_t n) override {
    select_device();
    check(ncclAllReduce(data, data, n, ncclFloat32, ncclSum, comm_, stream_), "all-reduce");
  }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    select_device();
    check(ncclAllGather(send, recv, bytes, ncclUint8, comm_, stream_), "all-gather");
  }

  // Sets the flag only: the communicator is torn down (aborted, not destroyed) with the group, since waiting
  // ranks' kernels must be freed by ncclCommAbort; a collective after this throws.
  void abort() override { aborted_ = true; }

 private:
  void select_device() {
    if (aborted_) throw std::runtime_error("tensor parallel: another rank failed, the group is stopped");
    if (cudaSetDevice(device_) != cudaSuccess) throw std::runtime_error("NCCL: cannot select cuda:" + std::to_string(device_));
  }

  ncclComm_t comm_;
  int rank_, world_, device_;
  cudaStream_t stream_;
  bool aborted_ = false;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_nccl_communicators(std::span<Backend* const> ranks) {
  const int world = static_cast<int>(ranks.size());
  std::vector<int> devices;
  std::set<int> seen;
  for (Backend* b : ranks) {
    const DeviceInfo d = b->device_info();
    if (d.kind != "cuda" || b->native_stream() == nullptr) throw std::runtime_error("NCCL: rank on " + b->name() + " is not a CUDA backend");
    if (!seen.insert(d.index).second) {
      throw std::runtime_error("tensor parallel: cuda:" + std::to_string(d.index) + " is given to two ranks");
    }
    devices.push_back(d.index);
  }
  // NVLink multicast (NVLS) is off unless the user asked for it: the machines this runs on do not lend it.
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  std::vector<ncclComm_t> comms(static_cast<size_t>(world));
  check(ncclCommInitAll(comms.data(), world, devices.data()), "init");
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < world; ++r) {
    out.push_back(std::make_unique<NcclCommunicator>(comms[static_cast<size_t>(r)], r, world, devices[static_cast<size_t>(r)],
                                                     static_cast<cudaStream_t>(ranks[static_cast<size_t>(r)]->native_stream())));
  }
  return out;
}

}  // namespace pensieve::backend
