// Built with -mavx2 -mfma -mf16c; only reached when cpuid says the CPU has them.
#include "backend/cpu/kernels_x86.inl"

namespace pensieve::backend::cpu {
const KernelTable* avx2_kernels_unchecked() { return &kTable; }
}  // namespace pensieve::backend::cpu
