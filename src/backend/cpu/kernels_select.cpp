// Runtime choice of kernel table from cpuid (x86-64) or the OS's feature report (AArch64), so one binary
// runs on any CPU of its architecture (and elsewhere, scalar).
#include <cstdlib>
#include <string_view>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

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

void round_to_bf16_avx512bf16(const float* in, uint16_t* out, int n);
void vec_bf16_pairs_avx512bf16(const uint16_t* w, const uint16_t* act, size_t act_stride, int n_act, int n, float* out,
                               size_t out_stride);

const KernelTable* avx512_kernels() {
  __builtin_cpu_init();
  bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
            __builtin_cpu_supports("fma");
  if (!ok) return nullptr;
  if (!__builtin_cpu_supports("avx512bf16")) return avx512_kernels_unchecked();
  // The same table with BF16 weights multiplied by vdpbf16ps.
  static const KernelTable with_bf16 = [] {
    KernelTable t = *avx512_kernels_unchecked();
    t.name = "avx512-bf16";
    t.round_to_bf16 = round_to_bf16_avx512bf16;
    t.vec_bf16_pairs = vec_bf16_pairs_avx512bf16;
    return t;
  }();
  return &with_bf16;
}
#else
const KernelTable* avx2_kernels() { return nullptr; }
const KernelTable* avx512_kernels() { return nullptr; }
#endif

#if defined(__aarch64__)
const KernelTable* neon_kernels_unchecked();
const KernelTable* neon_dotprod_kernels_unchecked();

namespace {
bool cpu_has_dotprod() {
#if defined(__linux__)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)  // the kernel's bit; older C libraries lack the name
#endif
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
  int has = 0;
  size_t size = sizeof has;
  return sysctlbyname("hw.optional.arm.FEAT_DotProd", &has, &size, nullptr, 0) == 0 && has != 0;
#else
  return false;
#endif
}
}  // namespace

const KernelTable* neon_kernels() { return neon_kernels_unchecked(); }  // NEON is mandatory on AArch64
const KernelTable* neon_dotprod_kernels() {
  static const bool has = cpu_has_dotprod();
  return has ? neon_dotprod_kernels_unchecked() : nullptr;
}
#else
const KernelTable* neon_kernels() { return nullptr; }
const KernelTable* neon_dotprod_kernels() { return nullptr; }
#endif

const KernelTable& pick_kernels() {
  static const KernelTable* chosen = [] {
    const char* env = std::getenv("PENSIEVE_ISA");
    std::string_view want = env ? env : "";
    if (want == "scalar") return &scalar_kernels();
    if (want != "avx2" && want != "neon") {
      if (const KernelTable* t = avx512_kernels()) return t;
      if (const KernelTable* t = neon_dotprod_kernels()) return t;
    }
    if (const KernelTable* t = avx2_kernels()) return t;
    if (const KernelTable* t = neon_kernels()) return t;
    return &scalar_kernels();
  }();
  return *chosen;
}

}  // namespace pensieve::backend::cpu
