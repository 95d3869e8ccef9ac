#pragma once
// The kernel tables this CPU runs, for the backend tests to check each one.
#include <vector>

#include "backend/cpu/kernels.h"

namespace pensieve::backend::cpu::test_inputs {

// Every SIMD table this CPU has (none may be missing silently: kernels_test checks which must be there).
inline std::vector<const KernelTable*> simd_tables() {
  std::vector<const KernelTable*> t;
  for (const KernelTable* k : {avx2_kernels(), avx512_kernels(), neon_kernels(), neon_dotprod_kernels()}) {
    if (k != nullptr) t.push_back(k);
  }
  return t;
}

// The scalar reference first, then the SIMD tables.
inline std::vector<const KernelTable*> all_tables() {
  std::vector<const KernelTable*> t{&scalar_kernels()};
  for (const KernelTable* k : simd_tables()) t.push_back(k);
  return t;
}

}  // namespace pensieve::backend::cpu::test_inputs
