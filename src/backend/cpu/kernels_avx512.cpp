// Built with AVX-512 F/BW/VL/VNNI; only reached when cpuid says the CPU has them.
#define PENSIEVE_AVX512 1
#include "backend/cpu/kernels_x86.inl"

namespace pensieve::backend::cpu {
const KernelTable* avx512_kernels_unchecked() { return &kTable; }
}  // namespace pensieve::backend::cpu
