#pragma once
// NCCL collectives for a tensor-parallel group of CUDA backends in one process (built only when CMake finds
// NCCL; reached through make_communicators).
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/communicator.h"

namespace pensieve::backend {

// One communicator per rank; rank r runs on ranks[r], a CUDA backend, on its own device. NVLink SHARP
// (NVLS, multicast objects) is kept off: NCCL_NVLS_ENABLE=0 unless the environment already sets it.
// Throws std::runtime_error (one line) when a device repeats or NCCL cannot set the group up.
std::vector<std::unique_ptr<Communicator>> make_nccl_communicators(std::span<Backend* const> ranks);
// Why libnccl cannot be loaded here (it is opened at run time), or empty.
std::string nccl_library_unavailable_reason();

}  // namespace pensieve::backend
