#pragma once
// Internal: a 4-lane float vector through the GCC/Clang vector extension, for the quantizers' inner loops.
// Plain loops over float sums do not vectorize without -ffast-math (which would let the compiler reorder
// sums), and clamping to a range compiles to branches; written with this type they become SSE2/NEON
// instructions on any target, with results identical to the scalar arithmetic lane by lane.
#include <cstdint>
#include <cstring>

namespace pensieve::tensor::detail {

using Float4 = float __attribute__((vector_size(16)));
using Int4 = int32_t __attribute__((vector_size(16)));

inline Float4 load4(const float* p) {
  Float4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline Float4 splat4(float s) { return Float4{s, s, s, s}; }

inline float sum4(Float4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// round(v) (halves up) clamped to [0, top], top a whole number: clamp first, so that the argument of the
// truncating conversion is never negative and truncation after + 0.5 is rounding.
inline Float4 round_clamped4(Float4 v, float top) {
  v += splat4(0.5f);
  const Int4 positive = v > splat4(0.0f);
  v = Float4(Int4(v) & positive);
  const Int4 below_top = v < splat4(top);
  v = Float4((Int4(v) & below_top) | (Int4(splat4(top)) & ~below_top));
  return __builtin_convertvector(__builtin_convertvector(v, Int4), Float4);
}

}  // namespace pensieve::tensor::detail
