// Picks the communicator a group of backends can use.
#include "backend/communicator.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#if PENSIEVE_HAVE_NCCL
#include "backend/cuda/nccl_communicator.h"
#endif

namespace pensieve::backend {

std::string nccl_unavailable_reason() {
#if PENSIEVE_HAVE_NCCL
  return nccl_library_unavailable_reason();
#else
  return "this build of pensieve has no NCCL (it was not found when the build was configured)";
#endif
}

std::vector<std::unique_ptr<Communicator>> make_communicators(std::span<Backend* const> ranks) {
  if (ranks.empty()) throw std::runtime_error("tensor parallel: no ranks");
  const auto on_host = [](const Backend* b) { return b->host_memory(); };
  if (std::all_of(ranks.begin(), ranks.end(), on_host)) return make_thread_communicators(static_cast<int>(ranks.size()));
  if (std::any_of(ranks.begin(), ranks.end(), on_host)) {
    throw std::runtime_error("tensor parallel: the ranks mix CPU and GPU backends");
  }
  std::set<int> devices;
  for (const Backend* b : ranks) devices.insert(b->device_info().index);
  if (devices.size() < ranks.size()) return make_staged_communicators(ranks);  // NCCL takes one rank per GPU
#if PENSIEVE_HAVE_NCCL
  return make_nccl_communicators(ranks);
#else
  throw std::runtime_error("tensor parallel on GPUs needs NCCL: " + nccl_unavailable_reason());
#endif
}

}  // namespace pensieve::backend
