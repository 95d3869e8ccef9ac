// x86 SIMD kernels, compiled twice: once for AVX2+FMA+F16C (kernels_avx2.cpp) and once for AVX-512 with
// VNNI (kernels_avx512.cpp, PENSIEVE_AVX512 defined). Everything has internal linkage so the two copies,
// built with different instruction sets, can never be merged by the linker.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/interleaved_weights.h"
#include "backend/cpu/kernels.h"

namespace {

using pensieve::backend::cpu::kQ8BlockElements;
using pensieve::backend::cpu::Q8Block;
using pensieve::backend::cpu::kQ4_0x8GroupBlockBytes;
using pensieve::backend::cpu::kQ8_0x8GroupBlockBytes;
using pensieve::backend::cpu::kQ4_Kx8GroupBlockBytes;
using pensieve::backend::cpu::kQ6_Kx8GroupBlockBytes;

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float half_to_float(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

float dot_f32(const float* a, const float* b, int n) {
  int i = 0;
#ifdef PENSIEVE_AVX512
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  // Folded through memory: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized inside its own header.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(s0, s1));
  __m256 t0 = _mm256_load_ps(lanes), t1 = _mm256_load_ps(lanes + 8);
#else
  __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
#endif
  for (; i + 16 <= n; i += 16) {
    t0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), t0);
    t1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), t1);
  }
  for (; i + 8 <= n; i += 8) t0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), t0);
  float s = hsum256(_mm256_add_ps(t0, t1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void scale_f32(float a, float* y, int n) {
  int i = 0;
  const __m256 va = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] *= a;
}

void f16_to_f32(const uint16_t* in, float* out, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
  for (; i < n; ++i) out[i] = _cvtsh_ss(in[i]);
}

void f32_to_f16(const float* in, uint16_t* out, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) out[i] = _cvtss_sh(in[i], _MM_FROUND_TO_NEAREST_INT);
}

void bf16_to_f32(const uint16_t* in, float* out, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) {
    uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    std::memcpy(out + i, &bits, 4);
  }
}

void quantize_q8(const float* x, Q8Block* out, int n) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < n / kQ8BlockElements; ++b) {
    const float* xb = x + b * kQ8BlockElements;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[k]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float d = _mm_cvtss_f32(m) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    __m256i sum = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vid));  // rounds to nearest even, as nearbyint does
      sum = _mm256_add_epi32(sum, q[k]);
    }
    // packs interleave 128-bit lanes; the permute puts the 32 bytes back in element order.
    __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
    __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs), p);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_hadd_epi32(s, s);
    s = _mm_hadd_epi32(s, s);
    out[b].d = d;
    out[b].sum = _mm_cvtsi128_si32(s);
  }
}

// Sum of products of unsigned bytes u and signed bytes s, as eight int32 lanes.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#ifdef PENSIEVE_AVX512
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// The 32 nibbles of a legacy block in element order (low nibbles are elements 0..15).
inline __m256i legacy_nibbles(const std::byte* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

constexpr size_t kQ8_0Bytes = 34;
constexpr size_t kQ4_0Bytes = 18;
constexpr int kActGroup = 4;  // activation rows sharing one pass over the weight row

// G activation rows per pass over the weight row. G is a compile-time constant so the accumulators live in
// registers (indexing a local array by a run-time k would keep them in memory).
template <int G>
void q8_0_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + b * kQ8_0Bytes;
    const float dw = half_to_float(wb);
    const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 2));
    const __m256i aw = _mm256_sign_epi8(qw, qw);  // |w| as unsigned bytes; the sign moves onto a
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
      const __m256i p = dot_u8s8(aw, _mm256_sign_epi8(qa, qw));
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a.d), acc[k]);
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]);
}

template <int G>
void q4_0_group(const std::byte* w, const Q8Block* a0, size_t act_stride, int n_blocks, float* out,
                size_t out_stride) {
  __m256 acc[G];
  float offset[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = _mm256_setzero_ps();
    offset[k] = 0;
  }
  for (int b = 0; b < n_blocks; ++b) {
    const std::byte* wb = w + b * kQ4_0Bytes;
    const float dw = half_to_float(wb);
    const __m256i qw = legacy_nibbles(wb + 2);
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
      const float scale = dw * a.d;
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(qw, qa)), _mm256_set1_ps(scale), acc[k]);
      offset[k] += scale * static_cast<float>(a.sum);  // weights are stored +8: subtract 8 * sum(a) at the end
    }
  }
  for (int k = 0; k < G; ++k) out[static_cast<size_t>(k) * out_stride] = hsum256(acc[k]) - 8.0f * offset[k];
}

template <template <int> class Group>
void in_groups(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
               size_t out_stride) {
  int j = 0;
  for (; j + kActGroup <= n_act; j += kActGroup) {
    Group<kActGroup>::run(w, act + static_cast<size_t>(j) * act_stride, act_stride, n_blocks,
                          out + static_cast<size_t>(j) * out_stride, out_stride);
  }
  const Q8Block* a = act + static_cast<size_t>(j) * act_stride;
  float* o = out + static_cast<size_t>(j) * out_stride;
  switch (n_act - j) {
    case 3: Group<3>::run(w, a, act_stride, n_blocks, o, out_stride); break;
    case 2: Group<2>::run(w, a, act_stride, n_blocks, o, out_stride); break;
    case 1: Group<1>::run(w, a, act_stride, n_blocks, o, out_stride); break;
    default: break;
  }
}

// A kernel over G activation rows (a template on G) as a type in_groups can take, and the VecDotQ8 entry
// point that runs it over any number of rows.
#define PENSIEVE_GROUP(Name, call)                                                                           \
  template <int G>                                                                                           \
  struct Name {                                                                                              \
    static void run(const std::byte* w, const Q8Block* a, size_t s, int nb, float* o, size_t os) { call; } \
  };
#define PENSIEVE_VEC(name, Group)                                                                                \
  void name(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,      \
            size_t out_stride) {                                                                                 \
    in_groups<Group>(w, act, act_stride, n_act, n_blocks, out, out_stride);                                      \
  }

PENSIEVE_GROUP(Q8_0Group, (q8_0_group<G>(w, a, s, nb, o, os)))
PENSIEVE_GROUP(Q4_0Group, (q4_0_group<G>(w, a, s, nb, o, os)))
PENSIEVE_VEC(vec_q8_0, Q8_0Group)
PENSIEVE_VEC(vec_q4_0, Q4_0Group)

// Eight accumulators to one vector of their eight horizontal sums.
inline __m256 hsum8x8(const __m256* a) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

void attn_scores(const float* q, const float* rows, size_t stride, int n_rows, int n, float scale, float* out) {
  int s = 0;
  if (n % 8 == 0) {
    const __m256 vscale = _mm256_set1_ps(scale);
    // Eight positions at once: eight independent FMA chains and one reduction for all eight.
    for (; s + 8 <= n_rows; s += 8) {
      const float* r = rows + static_cast<size_t>(s) * stride;
      __m256 acc[8];
      for (int k = 0; k < 8; ++k) acc[k] = _mm256_setzero_ps();
      for (int i = 0; i < n; i += 8) {
        const __m256 qv = _mm256_loadu_ps(q + i);
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          acc[k] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(r + static_cast<size_t>(k) * stride + static_cast<size_t>(i)), acc[k]);
        }
      }
      _mm256_storeu_ps(out + s, _mm256_mul_ps(hsum8x8(acc), vscale));
    }
  }
  for (; s < n_rows; ++s) out[s] = scale * dot_f32(q, rows + static_cast<size_t>(s) * stride, n);
}

// exp(x) to ~2 ulp for x <= 88 (Cephes' expf polynomial); below -87.3 it is 0, NaN stays NaN.
inline __m256 exp256(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(lo, x));  // operand order keeps a NaN x
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

float exp_shifted_sum(float* x, float shift, int n) {
  const __m256 vshift = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vshift));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (i < n) {
    // The tail through a padded vector: -inf pads exponentiate to 0 and add nothing.
    alignas(32) float tail[8];
    for (int k = 0; k < 8; ++k) tail[k] = i + k < n ? x[i + k] : -INFINITY;
    const __m256 e = exp256(_mm256_sub_ps(_mm256_load_ps(tail), vshift));
    _mm256_store_ps(tail, e);
    sum = _mm256_add_ps(sum, e);
    for (int k = 0; i + k < n; ++k) x[i + k] = tail[k];
  }
  return hsum256(sum);
}

void attn_accumulate(const float* w, const float* rows, size_t stride, int n_rows, int n, float y_scale, float* y) {
  const __m256 ys = _mm256_set1_ps(y_scale);
  int i = 0;
  // 32 outputs stay in registers across all the positions.
  for (; i + 32 <= n; i += 32) {
    __m256 a0 = _mm256_mul_ps(ys, _mm256_loadu_ps(y + i)), a1 = _mm256_mul_ps(ys, _mm256_loadu_ps(y + i + 8));
    __m256 a2 = _mm256_mul_ps(ys, _mm256_loadu_ps(y + i + 16)), a3 = _mm256_mul_ps(ys, _mm256_loadu_ps(y + i + 24));
    for (int s = 0; s < n_rows; ++s) {
      const __m256 ws = _mm256_set1_ps(w[s]);
      const float* r = rows + static_cast<size_t>(s) * stride + static_cast<size_t>(i);
      a0 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(r), a0);
      a1 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(r + 8), a1);
      a2 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(r + 16), a2);
      a3 = _mm256_fmadd_ps(ws, _mm256_loadu_ps(r + 24), a3);
    }
    _mm256_storeu_ps(y + i, a0);
    _mm256_storeu_ps(y + i + 8, a1);
    _mm256_storeu_ps(y + i + 16, a2);
    _mm256_storeu_ps(y + i + 24, a3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a = _mm256_mul_ps(ys, _mm256_loadu_ps(y + i));
    for (int s = 0; s < n_rows; ++s) {
      a = _mm256_fmadd_ps(_mm256_set1_ps(w[s]), _mm256_loadu_ps(rows + static_cast<size_t>(s) * stride + static_cast<size_t>(i)), a);
    }
    _mm256_storeu_ps(y + i, a);
  }
  for (; i < n; ++i) {
    float acc = y_scale * y[i];
    for (int s = 0; s < n_rows; ++s) acc += w[s] * rows[static_cast<size_t>(s) * stride + static_cast<size_t>(i)];
    y[i] = acc;
  }
}

// BF16 weights: eight at a time widened to float (a 16-bit shift) and multiplied into G activation rows.
template <int G>
void bf16_group(const uint16_t* w, const float* a0, size_t act_stride, int n, float* out, size_t out_stride) {
  __m256 acc[G];
  for (int k = 0; k < G; ++k) acc[k] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) acc[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(a0 + static_cast<size_t>(k) * act_stride + i), acc[k]);
  }
  for (int k = 0; k < G; ++k) {
    float s = hsum256(acc[k]);
    const float* a = a0 + static_cast<size_t>(k) * act_stride;
    for (int t = i; t < n; ++t) {
      const uint32_t bits = static_cast<uint32_t>(w[t]) << 16;
      float wf;
      std::memcpy(&wf, &bits, 4);
      s += wf * a[t];
    }
    out[static_cast<size_t>(k) * out_stride] = s;
  }
}

void vec_bf16(const uint16_t* w, const float* act, size_t act_stride, int n_act, int n, float* out, size_t out_stride) {
  int j = 0;
  for (; j + 4 <= n_act; j += 4) bf16_group<4>(w, act + static_cast<size_t>(j) * act_stride, act_stride, n, out + static_cast<size_t>(j) * out_stride, out_stride);
  const float* a = act + static_cast<size_t>(j) * act_stride;
  float* o = out + static_cast<size_t>(j) * out_stride;
  switch (n_act - j) {
    case 3: bf16_group<3>(w, a, act_stride, n, o, out_stride); break;
    case 2: bf16_group<2>(w, a, act_stride, n, o, out_stride); break;
    case 1: bf16_group<1>(w, a, act_stride, n, o, out_stride); break;
    default: break;
  }
}

void q8_0_to_f32(const std::byte* blocks, float* out, int n) {
  for (int b = 0; b < n / kQ8BlockElements; ++b) {
    const std::byte* block = blocks + static_cast<size_t>(b) * kQ8_0Bytes;
    const __m256 d = _mm256_set1_ps(half_to_float(block));
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    float* o = out + static_cast<size_t>(b) * kQ8BlockElements;
    _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
    _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
    _mm256_storeu_ps(o + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
    _mm256_storeu_ps(o + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
  }
}

#include "backend/cpu/kernels_quant_x86.inl"
#include "backend/cpu/kernels_x8_x86.inl"
#undef PENSIEVE_GROUP
#undef PENSIEVE_VEC

// Four Q4_0 weight rows against G activation rows. Per block and activation row, the four rows' int32 dot
// products are reduced together (three hadds) into one vector [row0 row1 row2 row3], so the conversion to
// float, the scaling by the four weight scales and the -8 offset are one vector op each rather than four
// scalar-broadcast ones.
template <int G>
void q4_0_rows4_group(const std::byte* w, size_t row_bytes, const Q8Block* a0, size_t act_stride, int n_blocks,
                      float* out, size_t out_stride) {
  __m128 acc[G], offset[G];
  for (int k = 0; k < G; ++k) {
    acc[k] = _mm_setzero_ps();
    offset[k] = _mm_setzero_ps();
  }
  for (int b = 0; b < n_blocks; ++b) {
    __m256i qw[4];
    alignas(8) uint16_t scales[4];
    for (int r = 0; r < 4; ++r) {
      const std::byte* wb = w + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b) * kQ4_0Bytes;
      std::memcpy(&scales[r], wb, 2);
      qw[r] = legacy_nibbles(wb + 2);
    }
    const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales)));
#pragma GCC unroll 4
    for (int k = 0; k < G; ++k) {
      const Q8Block& a = a0[static_cast<size_t>(k) * act_stride + static_cast<size_t>(b)];
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
      const __m256i h01 = _mm256_hadd_epi32(dot_u8s8(qw[0], qa), dot_u8s8(qw[1], qa));
      const __m256i h23 = _mm256_hadd_epi32(dot_u8s8(qw[2], qa), dot_u8s8(qw[3], qa));
      const __m256i h = _mm256_hadd_epi32(h01, h23);  // per 128-bit half: [row0 row1 row2 row3] partial sums
      const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
      const __m128 scale = _mm_mul_ps(dw, _mm_set1_ps(a.d));
      acc[k] = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, acc[k]);
      // Weights are stored +8: subtract 8 * d * sum(a) per block.
      offset[k] = _mm_fmadd_ps(scale, _mm_set1_ps(static_cast<float>(a.sum)), offset[k]);
    }
  }
  for (int k = 0; k < G; ++k) {
    _mm_storeu_ps(out + static_cast<size_t>(k) * out_stride,
                  _mm_fnmadd_ps(_mm_set1_ps(8.0f), offset[k], acc[k]));
  }
}

void rows4_q4_0(const std::byte* w, size_t row_bytes, const Q8Block* act, size_t act_stride, int n_act,
                int n_blocks, float* out, size_t out_stride) {
  int j = 0;
  for (; j + kActGroup <= n_act; j += kActGroup) {
    q4_0_rows4_group<kActGroup>(w, row_bytes, act + static_cast<size_t>(j) * act_stride, act_stride, n_blocks,
                                out + static_cast<size_t>(j) * out_stride, out_stride);
  }
  const Q8Block* a = act + static_cast<size_t>(j) * act_stride;
  float* o = out + static_cast<size_t>(j) * out_stride;
  switch (n_act - j) {
    case 3: q4_0_rows4_group<3>(w, row_bytes, a, act_stride, n_blocks, o, out_stride); break;
    case 2: q4_0_rows4_group<2>(w, row_bytes, a, act_stride, n_blocks, o, out_stride); break;
    case 1: q4_0_rows4_group<1>(w, row_bytes, a, act_stride, n_blocks, o, out_stride); break;
    default: break;
  }
}

const pensieve::backend::cpu::KernelTable kTable{
#ifdef PENSIEVE_AVX512
    "avx512",
#else
    "avx2",
#endif
    dot_f32,  scale_f32, f16_to_f32, f32_to_f16, bf16_to_f32, quantize_q8, vec_q8_0, vec_q4_0,
    vec_q4_1, vec_q5_0, vec_q5_1,  vec_q2_k,   vec_q3_k,   vec_q4_k,    vec_q5_k,    vec_q6_k,
    attn_scores, exp_shifted_sum, attn_accumulate, rows4_q4_0, x8_q4_0, x8_q8_0, vec_bf16, nullptr, nullptr, q8_0_to_f32, x8_q4_k, x8_q6_k};

}  // namespace
