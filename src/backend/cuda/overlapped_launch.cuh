#pragma once
// Programmatic dependent launch (Hopper and later): a kernel launched this way may have its blocks start while
// the kernel before it on the stream is still finishing. A decode step of one stream is a chain of ~370
// kernels, most of them a few microseconds long, and each one used to start from an idle GPU: its blocks
// launched, issued their first loads, and waited a full memory latency with nothing else in flight. Launched
// overlapped, a product's blocks fetch their first weights (which no kernel writes) while the kernel before
// still runs, and wait for it only before they read its output.
//
// The rule every kernel launched through launch_overlapped keeps: before wait_for_prior_kernels it reads only
// memory that no kernel of the step writes (weights, norms' gammas, the step's uploaded tables) and writes
// nothing. The wait returns once the kernels before it have finished and their writes are visible, so every
// block must reach it before it exits, or a kernel after it could overtake the kernel before it.
// On GPUs before Hopper the launch attribute is ignored and the two device calls compile to nothing.
#include <cuda_runtime.h>

#include <cstdlib>
#include <string_view>

namespace pensieve::backend::cuda {

// Waits for the kernels before, then lets the next kernel's blocks start once every block of this one has
// come here (or exited): right after the wait, so that at most one kernel is ever waiting ahead of the one
// that runs.
__device__ __forceinline__ void wait_for_prior_kernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Sends the line at p towards L2, holding no register for it: what a kernel fetches before
// wait_for_prior_kernels (weights, a KV row written by earlier steps) is on its way while the kernel before
// finishes.
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// PENSIEVE_CUDA_OVERLAP=0 launches everything plainly (to measure what overlapping gives, or to rule it out).
inline bool overlapped_launches_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("PENSIEVE_CUDA_OVERLAP");
    return v == nullptr || std::string_view(v) != "0";
  }();
  return enabled;
}

template <typename... Params, typename... Args>
void launch_overlapped(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                       Args... args) {
  cudaLaunchAttribute overlap{};
  overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &overlap;
  config.numAttrs = overlapped_launches_enabled() ? 1 : 0;
  // A failed launch is reported by the caller's check of cudaGetLastError, as for <<<...>>>.
  (void)cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

}  // namespace pensieve::backend::cuda
