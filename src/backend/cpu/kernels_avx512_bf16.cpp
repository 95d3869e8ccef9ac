// BF16 weights with AVX512_BF16's vdpbf16ps, built with -mavx512bf16 and only reached when cpuid says the CPU
// has it (kernels_select.cpp puts these into a copy of the AVX-512 table). The activations are rounded to BF16
// once per product, so each 32-element step is one load per activation row and one vdpbf16ps.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/kernels.h"

namespace pensieve::backend::cpu {
namespace {

float bf16_value(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float hsum512(__m512 v) {
  // Folded through memory: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized inside its own header.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}

template <int G>
void pairs_group(const uint16_t* w, const uint16_t* a0, size_t act_stride, int n, float* out, size_t out_stride) {
  __m512 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh wv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + i));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const __m512bh av = reinterpret_cast<__m512bh>(_mm512_loadu_si512(a0 + static_cast<size_t>(k) * act_stride + i));
      acc[k] = _mm512_dpbf16_ps(acc[k], wv, av);
    }
  }
  for (int k = 0; k < G; ++k) {
    float s = hsum512(acc[k]);
    const uint16_t* a = a0 + static_cast<size_t>(k) * act_stride;
    for (int t = i; t < n; ++t) s += bf16_value(w[t]) * bf16_value(a[t]);
    out[static_cast<size_t>(k) * out_stride] = s;
  }
}

}  // namespace

void round_to_bf16_avx512bf16(const float* in, uint16_t* out, int n) {
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    // cvtne2ps_pbh puts its second operand in the low half.
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
    _mm512_storeu_si512(out + i, reinterpret_cast<__m512i>(v));
  }
  for (; i < n; ++i) {
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_set1_ps(in[i]));
    uint16_t lanes[16];
    std::memcpy(lanes, &v, sizeof lanes);
    out[i] = lanes[0];
  }
}

void vec_bf16_pairs_avx512bf16(const uint16_t* w, const uint16_t* act, size_t act_stride, int n_act, int n, float* out,
                               size_t out_stride) {
  int j = 0;
  for (; j + 4 <= n_act; j += 4) {
    pairs_group<4>(w, act + static_cast<size_t>(j) * act_stride, act_stride, n, out + static_cast<size_t>(j) * out_stride,
                   out_stride);
  }
  const uint16_t* a = act + static_cast<size_t>(j) * act_stride;
  float* o = out + static_cast<size_t>(j) * out_stride;
  switch (n_act - j) {
    case 3: pairs_group<3>(w, a, act_stride, n, o, out_stride); break;
    case 2: pairs_group<2>(w, a, act_stride, n, o, out_stride); break;
    case 1: pairs_group<1>(w, a, act_stride, n, o, out_stride); break;
    default: break;
  }
}

}  // namespace pensieve::backend::cpu
