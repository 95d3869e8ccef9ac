// Built with -march=armv8.2-a+dotprod; only reached when the OS reports the dot product extension.
#define PENSIEVE_DOTPROD 1
#include "backend/cpu/kernels_neon.inl"

namespace pensieve::backend::cpu {
const KernelTable* neon_dotprod_kernels_unchecked() { return &kTable; }
}  // namespace pensieve::backend::cpu
