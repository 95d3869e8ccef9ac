// Runtime choice of kernel table from cpuid, so one binary runs on any x86-64 (and elsewhere, scalar).
#include <cstdlib>
#include <string_view>

#include "backend/cpu/kernels.h"

namespace pensieve::backend::cpu {

#if defined(__x86_64__)
const KernelTable* avx2_kernels_unchecked();
const KernelTable* avx512_kernels_unchecked();

const KernelTable* avx2_kernels() {
  __builtin_cpu_init();
  bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok ? avx2_kernels_unchecked() : nullptr;  // every AVX2+FMA CPU also has F16C
}

const KernelTable* avx512_kernels() {
  __builtin_cpu_init();
  bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
            __builtin_cpu_supports("fma");
  return ok ? avx512_kernels_unchecked() : nullptr;
}
#else
const KernelTable* avx2_kernels() { return nullptr; }
const KernelTable* avx512_kernels() { return nullptr; }
#endif

const KernelTable& pick_kernels() {
  static const KernelTable* chosen = [] {
    const char* env = std::getenv("PENSIEVE_ISA");
    std::string_view want = env ? env : "";
    if (want == "scalar") return &scalar_kernels();
    if (want != "avx2") {
      if (const KernelTable* t = avx512_kernels()) return t;
    }
    if (const KernelTable* t = avx2_kernels()) return t;
    return &scalar_kernels();
  }();
  return *chosen;
}

}  // namespace pensieve::backend::cpu
