// Baseline Armv8.0 NEON, which every AArch64 CPU has.
#include "backend/cpu/kernels_neon.inl"

namespace pensieve::backend::cpu {
const KernelTable* neon_kernels_unchecked() { return &kTable; }
}  // namespace pensieve::backend::cpu
