#pragma once
// One RoPE rotation, shared by the CPU backend's rope, the CUDA RoPE kernel (elementwise.cu) and the CUDA one
// fused with the KV store (attention.cu): pair i of a head's first n_rot dimensions, (i, i + n_rot / 2) in NeoX
// order or (2i, 2i + 1) otherwise, turned by the position's (cos, sin) for frequency i, in place.

#if defined(__CUDACC__)
#define PENSIEVE_ROPE_HD __host__ __device__ __forceinline__
#else
#define PENSIEVE_ROPE_HD inline
#endif

namespace pensieve::backend {

// Element d of the head after the rotation, read from the unrotated head (a kernel that rotates while it
// loads takes one element a thread).
PENSIEVE_ROPE_HD float rotated_element(const float* head, int d, int n_rot, bool neox, const float* cos_sin_row) {
  if (d >= n_rot) return head[d];
  const int half = n_rot / 2;
  const int i = neox ? (d < half ? d : d - half) : d / 2;
  const int a = neox ? i : 2 * i;
  const int b = neox ? i + half : 2 * i + 1;
  const float c = cos_sin_row[2 * i], s = cos_sin_row[2 * i + 1];
  const float x0 = head[a], x1 = head[b];
  return d == a ? x0 * c - x1 * s : x0 * s + x1 * c;
}

// Pair i rotated in place: both of its elements from the one formula above, so that every path (in place or
// while loading) gives the same floats.
PENSIEVE_ROPE_HD void rotate_pair(float* head, int i, int n_rot, bool neox, const float* cos_sin_row) {
  const int a = neox ? i : 2 * i;
  const int b = neox ? i + n_rot / 2 : 2 * i + 1;
  const float ra = rotated_element(head, a, n_rot, neox, cos_sin_row);
  const float rb = rotated_element(head, b, n_rot, neox, cos_sin_row);
  head[a] = ra;
  head[b] = rb;
}

}  // namespace pensieve::backend

#undef PENSIEVE_ROPE_HD
