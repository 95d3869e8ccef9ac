// Reference kernels: plain loops, no intrinsics. Correct on every CPU; the SIMD tables must agree with these.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "backend/cpu/kernels_quant_scalar.h"
#include "tensor/dequantize.h"

namespace pensieve::backend::cpu {
namespace {

float dot_f32(const float* a, const float* b, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void scale_f32(float a, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] *= a;
}

void f16_to_f32(const uint16_t* in, float* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = tensor::fp16_to_fp32(in[i]);
}

void f32_to_f16(const float* in, uint16_t* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = tensor::fp32_to_fp16(in[i]);
}

void bf16_to_f32(const uint16_t* in, float* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = tensor::bf16_to_fp32(in[i]);
}

void quantize_q8(const float* x, Q8Block* out, int n) {
  for (int b = 0; b < n / kQ8BlockElements; ++b) {
    const float* xb = x + b * kQ8BlockElements;
    float amax = 0;
    for (int i = 0; i < kQ8BlockElements; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < kQ8BlockElements; ++i) {
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      out[b].qs[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = sum;
  }
}

uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

constexpr size_t kQ8_0Bytes = 34;
constexpr size_t kQ4_0Bytes = 18;

void vec_q8_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  for (int j = 0; j < n_act; ++j) {
    const Q8Block* a = act + static_cast<size_t>(j) * act_stride;
    float total = 0;
    for (int b = 0; b < n_blocks; ++b) {
      const std::byte* wb = w + b * kQ8_0Bytes;
      const auto* qw = reinterpret_cast<const int8_t*>(wb + 2);
      int32_t isum = 0;
      for (int i = 0; i < kQ8BlockElements; ++i) isum += qw[i] * a[b].qs[i];
      total += static_cast<float>(isum) * (tensor::fp16_to_fp32(load_u16(wb)) * a[b].d);
    }
    out[static_cast<size_t>(j) * out_stride] = total;
  }
}

void vec_q4_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride) {
  for (int j = 0; j < n_act; ++j) {
    const Q8Block* a = act + static_cast<size_t>(j) * act_stride;
    float total = 0;
    for (int b = 0; b < n_blocks; ++b) {
      const std::byte* wb = w + b * kQ4_0Bytes;
      const auto* qw = reinterpret_cast<const uint8_t*>(wb + 2);
      int32_t isum = 0;
      for (int i = 0; i < 16; ++i) {
        isum += (qw[i] & 0x0F) * a[b].qs[i];
        isum += (qw[i] >> 4) * a[b].qs[i + 16];
      }
      isum -= 8 * a[b].sum;
      total += static_cast<float>(isum) * (tensor::fp16_to_fp32(load_u16(wb)) * a[b].d);
    }
    out[static_cast<size_t>(j) * out_stride] = total;
  }
}

void attn_scores(const float* q, const float* rows, size_t stride, int n_rows, int n, float scale, float* out) {
  for (int s = 0; s < n_rows; ++s) out[s] = scale * dot_f32(q, rows + static_cast<size_t>(s) * stride, n);
}

float exp_shifted_sum(float* x, float shift, int n) {
  float sum = 0;
  for (int i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - shift));
  return sum;
}

void attn_accumulate(const float* w, const float* rows, size_t stride, int n_rows, int n, float y_scale, float* y) {
  for (int i = 0; i < n; ++i) {
    float acc = y_scale * y[i];
    for (int s = 0; s < n_rows; ++s) acc += w[s] * rows[static_cast<size_t>(s) * stride + static_cast<size_t>(i)];
    y[i] = acc;
  }
}

void vec_bf16(const uint16_t* w, const float* act, size_t act_stride, int n_act, int n, float* out, size_t out_stride) {
  for (int j = 0; j < n_act; ++j) {
    const float* a = act + static_cast<size_t>(j) * act_stride;
    float s = 0;
    for (int i = 0; i < n; ++i) s += tensor::bf16_to_fp32(w[i]) * a[i];
    out[static_cast<size_t>(j) * out_stride] = s;
  }
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable table{"scalar",         dot_f32,          scale_f32,
                                 f16_to_f32,       f32_to_f16,       bf16_to_f32,      quantize_q8,
                                 vec_q8_0,         vec_q4_0,         scalar::vec_q4_1, scalar::vec_q5_0,
                                 scalar::vec_q5_1, scalar::vec_q2_k, scalar::vec_q3_k, scalar::vec_q4_k,
                                 scalar::vec_q5_k, scalar::vec_q6_k, attn_scores,      exp_shifted_sum,
                                 attn_accumulate,  nullptr,          nullptr,
                                 nullptr,          vec_bf16,         nullptr,
                                 nullptr,          nullptr,          nullptr,
                                 nullptr};
  return table;
}

}  // namespace pensieve::backend::cpu
