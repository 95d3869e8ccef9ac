// NCCL all-reduce and all-gather on each rank's own CUDA stream, so that a collective sits in the stream
// between the ops before and after it and the host never waits for it. One process drives every GPU: the
// group is made at once with ncclCommInitAll, and each rank's thread then calls only its own communicator
// (NCCL needs no group calls when every rank has its own thread).
//
// libnccl is opened at run time (dlopen), not linked: a CUDA build must still start, and serve one GPU, on a
// machine without NCCL, as it runs on one without a GPU; only --tensor-parallel on GPUs needs the library.
#include "backend/cuda/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <nccl.h>

#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>

namespace pensieve::backend {
namespace {

// The NCCL entry points this file calls, from the shared library.
struct NcclApi {
  decltype(&ncclCommInitAll) comm_init_all = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  std::string unavailable;  // why the library cannot be used (empty when it can)
};

template <typename F>
void resolve(void* lib, const char* name, F& out, std::string& why) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (!out && why.empty()) why = std::string("libnccl has no ") + name;
}

const NcclApi& nccl() {
  static const NcclApi api = [] {
    NcclApi a;
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      a.unavailable = "cannot load libnccl.so.2 (install NCCL or add its directory to LD_LIBRARY_PATH)";
      return a;
    }
    resolve(lib, "ncclCommInitAll", a.comm_init_all, a.unavailable);
    resolve(lib, "ncclCommDestroy", a.comm_destroy, a.unavailable);
    resolve(lib, "ncclCommAbort", a.comm_abort, a.unavailable);
    resolve(lib, "ncclAllReduce", a.all_reduce, a.unavailable);
    resolve(lib, "ncclAllGather", a.all_gather, a.unavailable);
    resolve(lib, "ncclGetErrorString", a.error_string, a.unavailable);
    return a;  // the library stays loaded for the process's life
  }();
  return api;
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string("NCCL: ") + what + ": " + nccl().error_string(r));
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
    if (aborted_) nccl().comm_abort(comm_);
    else nccl().comm_destroy(comm_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string name() const override { return "nccl"; }

  void all_reduce_sum(float* data, size_t n) override {
    select_device();
    check(nccl().all_reduce(data, data, n, ncclFloat32, ncclSum, comm_, stream_), "all-reduce");
  }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    select_device();
    check(nccl().all_gather(send, recv, bytes, ncclUint8, comm_, stream_), "all-gather");
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

std::string nccl_library_unavailable_reason() { return nccl().unavailable; }

std::vector<std::unique_ptr<Communicator>> make_nccl_communicators(std::span<Backend* const> ranks) {
  if (const std::string why = nccl_library_unavailable_reason(); !why.empty()) throw std::runtime_error("NCCL: " + why);
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
  check(nccl().comm_init_all(comms.data(), world, devices.data()), "init");
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < world; ++r) {
    out.push_back(std::make_unique<NcclCommunicator>(comms[static_cast<size_t>(r)], r, world, devices[static_cast<size_t>(r)],
                                                     static_cast<cudaStream_t>(ranks[static_cast<size_t>(r)]->native_stream())));
  }
  return out;
}

}  // namespace pensieve::backend
