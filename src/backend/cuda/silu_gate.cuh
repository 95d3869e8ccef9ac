#pragma once
// silu(gate) * up, the one expression of the SiLU-gate kernel (elementwise.cu) and the gate/up product kernel
// that applies it to its own sums (matvec_kquants.cu): a layer's result must not depend on which of the two
// its batch took.

namespace pensieve::backend::cuda {

__device__ __forceinline__ float silu_gate(float gate, float up) { return gate / (1.0f + __expf(-gate)) * up; }

}  // namespace pensieve::backend::cuda
