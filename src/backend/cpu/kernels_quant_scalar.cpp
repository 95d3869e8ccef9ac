// Reference int8 dot products for the weight formats beyond Q8_0/Q4_0: Q4_1, Q5_0, Q5_1 and the K-quants.
// Each decodes the integer quants and scales of a weight block element by element (the formulas of
// tensor/block_layouts.h), sums their products with the activation's int8 values in int32, and scales in
// float once per 32-element activation block, whose own scale d applies to exactly those elements.
#include "backend/cpu/kernels_quant_scalar.h"

#include <cstring>

#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"

namespace pensieve::backend::cpu::scalar {
namespace {

using tensor::fp16_to_fp32;

// Calls block_dot(block, first activation block it covers) for each weight block of each activation row.
// Blocks are copied out: tensor data in a GGUF mapping carries no alignment promise for these structs.
template <typename Block, int kElements, typename BlockDot>
void each_row(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride, BlockDot block_dot) {
  constexpr int kActBlocks = kElements / kQ8BlockElements;
  for (int j = 0; j < n_act; ++j) {
    const Q8Block* a = act + static_cast<size_t>(j) * act_stride;
    float total = 0;
    for (int b = 0; b < n_blocks / kActBlocks; ++b) {
      Block block;
      std::memcpy(&block, w + static_cast<size_t>(b) * sizeof(Block), sizeof(Block));
      total += block_dot(block, a + static_cast<size_t>(b) * kActBlocks);
    }
    out[static_cast<size_t>(j) * out_stride] = total;
  }
}

// Legacy 4/5-bit blocks: element i < 16 in the low nibble of qs[i], element i + 16 in the high nibble.
int legacy_nibble(const uint8_t* qs, int i) { return i < 16 ? (qs[i] & 15) : (qs[i - 16] >> 4); }

int legacy_fifth_bit(const uint8_t (&qh)[4], int i) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return static_cast<int>((bits >> i) & 1);
}

// Q4_K/Q5_K: element e of the super-block sits in byte 32*(e/64) + e%32, low nibble for the first 32 of
// each 64.
int k4_nibble(const uint8_t* qs, int e) {
  const uint8_t byte = qs[32 * (e / 64) + e % 32];
  return (e % 64) < 32 ? (byte & 15) : (byte >> 4);
}

// Q2_K/Q3_K: element e is the 2-bit field at bit 2*((e%128)/32) of byte 32*(e/128) + e%32.
int two_bit_field(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

// Q3_K's sixteen 6-bit scales: low nibble of scale g in byte g%8 (high nibble of it for g >= 8), top two
// bits in byte 8 + g%4 at bit 2*(g/4); stored offset by 32.
int q3_k_scale(const uint8_t (&packed)[12], int g) {
  const int low = g < 8 ? (packed[g] & 15) : (packed[g - 8] >> 4);
  const int high = (packed[8 + g % 4] >> (2 * (g / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q6_K: low nibble from ql[64*(e/128) + 32*(((e%128)/32)&1) + e%32] (high nibble of it in the second
// 64 of each 128), top two bits from qh[32*(e/128) + e%32] at bit 2*((e%128)/32); stored offset by 32.
int q6_k_value(const tensor::BlockQ6_K& b, int e) {
  const int half = e / 128;
  const int quarter = (e % 128) / 32;
  const uint8_t low_byte = b.ql[64 * half + 32 * (quarter & 1) + e % 32];
  const int low = quarter < 2 ? (low_byte & 15) : (low_byte >> 4);
  const int high = (b.qh[32 * half + e % 32] >> (2 * quarter)) & 3;
  return (low | (high << 4)) - 32;
}

}  // namespace

void vec_q4_1(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ4_1, 32>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                  [](const tensor::BlockQ4_1& b, const Q8Block* a) {
                                    int32_t isum = 0;
                                    for (int i = 0; i < 32; ++i) isum += legacy_nibble(b.qs, i) * a->qs[i];
                                    // x = d*q + m: the m part multiplies the sum of the activations.
                                    return a->d * (fp16_to_fp32(b.d) * static_cast<float>(isum) +
                                                   fp16_to_fp32(b.m) * static_cast<float>(a->sum));
                                  });
}

void vec_q5_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ5_0, 32>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                  [](const tensor::BlockQ5_0& b, const Q8Block* a) {
                                    int32_t isum = 0;
                                    for (int i = 0; i < 32; ++i) {
                                      const int q = legacy_nibble(b.qs, i) | (legacy_fifth_bit(b.qh, i) << 4);
                                      isum += (q - 16) * a->qs[i];
                                    }
                                    return a->d * fp16_to_fp32(b.d) * static_cast<float>(isum);
                                  });
}

void vec_q5_1(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ5_1, 32>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                  [](const tensor::BlockQ5_1& b, const Q8Block* a) {
                                    int32_t isum = 0;
                                    for (int i = 0; i < 32; ++i) {
                                      const int q = legacy_nibble(b.qs, i) | (legacy_fifth_bit(b.qh, i) << 4);
                                      isum += q * a->qs[i];
                                    }
                                    return a->d * (fp16_to_fp32(b.d) * static_cast<float>(isum) +
                                                   fp16_to_fp32(b.m) * static_cast<float>(a->sum));
                                  });
}

void vec_q2_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ2_K, 256>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                   [](const tensor::BlockQ2_K& b, const Q8Block* a) {
                                     const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
                                     float total = 0;
                                     for (int g = 0; g < 8; ++g) {
                                       // Two 16-element groups per activation block, each with a scale
                                       // (low nibble) and a min (high nibble) of its own.
                                       int32_t scaled = 0, mins = 0;
                                       for (int i = 0; i < 32; ++i) {
                                         const int e = 32 * g + i;
                                         const uint8_t sm = b.scales[e / 16];
                                         scaled += (sm & 15) * two_bit_field(b.qs, e) * a[g].qs[i];
                                         mins += (sm >> 4) * a[g].qs[i];
                                       }
                                       total += a[g].d * (d * static_cast<float>(scaled) - dmin * static_cast<float>(mins));
                                     }
                                     return total;
                                   });
}

void vec_q3_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ3_K, 256>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                   [](const tensor::BlockQ3_K& b, const Q8Block* a) {
                                     float total = 0;
                                     for (int g = 0; g < 8; ++g) {
                                       int32_t scaled = 0;
                                       for (int i = 0; i < 32; ++i) {
                                         const int e = 32 * g + i;
                                         // A clear bit g of hmask[e%32] means the stored value is offset by 4.
                                         const int high = (b.hmask[e % 32] >> g) & 1;
                                         const int q = two_bit_field(b.qs, e) - (high ? 0 : 4);
                                         scaled += q3_k_scale(b.scales, e / 16) * q * a[g].qs[i];
                                       }
                                       total += a[g].d * static_cast<float>(scaled);
                                     }
                                     return fp16_to_fp32(b.d) * total;
                                   });
}

void vec_q4_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ4_K, 256>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                   [](const tensor::BlockQ4_K& b, const Q8Block* a) {
                                     const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
                                     float total = 0;
                                     for (int g = 0; g < 8; ++g) {
                                       const tensor::ScaleMin sm = tensor::unpack_k4_scale_min(b.scales, g);
                                       int32_t isum = 0;
                                       for (int i = 0; i < 32; ++i) isum += k4_nibble(b.qs, 32 * g + i) * a[g].qs[i];
                                       total += a[g].d * (d * sm.scale * static_cast<float>(isum) -
                                                          dmin * sm.min * static_cast<float>(a[g].sum));
                                     }
                                     return total;
                                   });
}

void vec_q5_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ5_K, 256>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                   [](const tensor::BlockQ5_K& b, const Q8Block* a) {
                                     const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
                                     float total = 0;
                                     for (int g = 0; g < 8; ++g) {
                                       const tensor::ScaleMin sm = tensor::unpack_k4_scale_min(b.scales, g);
                                       int32_t isum = 0;
                                       for (int i = 0; i < 32; ++i) {
                                         const int fifth_bit = (b.qh[i] >> g) & 1;
                                         isum += (k4_nibble(b.qs, 32 * g + i) | (fifth_bit << 4)) * a[g].qs[i];
                                       }
                                       total += a[g].d * (d * sm.scale * static_cast<float>(isum) -
                                                          dmin * sm.min * static_cast<float>(a[g].sum));
                                     }
                                     return total;
                                   });
}

void vec_q6_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  each_row<tensor::BlockQ6_K, 256>(w, act, act_stride, n_act, n_blocks, out, out_stride,
                                   [](const tensor::BlockQ6_K& b, const Q8Block* a) {
                                     float total = 0;
                                     for (int g = 0; g < 8; ++g) {
                                       int32_t scaled = 0;
                                       for (int i = 0; i < 32; ++i) {
                                         const int e = 32 * g + i;
                                         scaled += b.scales[e / 16] * q6_k_value(b, e) * a[g].qs[i];
                                       }
                                       total += a[g].d * static_cast<float>(scaled);
                                     }
                                     return fp16_to_fp32(b.d) * total;
                                   });
}

}  // namespace pensieve::backend::cpu::scalar
