#pragma once
// The inner loops, one table per instruction set. The scalar table is the reference every SIMD table is
// tested against; pick_kernels() chooses the best table this CPU runs (cpuid, at run time).
#include <cstddef>
#include <cstdint>

namespace pensieve::backend::cpu {

inline constexpr int kQ8BlockElements = 32;

// An activation block quantized to int8: x[i] ~= d * qs[i]; sum = sum of qs (for weight formats with an
// offset, whose dot product needs it).
struct Q8Block {
  float d;
  int32_t sum;
  int8_t qs[kQ8BlockElements];
};

// One weight row of `n_blocks` blocks against n_act activation rows (row j starts at act + j * act_stride
// blocks): out[j * out_stride] = dot(weight row, activation row j).
using VecDotQ8 = void (*)(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks,
                          float* out, size_t out_stride);

// Four consecutive weight rows (row_bytes apart) against n_act activation rows, as VecDotQ8 does for one:
// out[j * out_stride + r] = dot(weight row r, activation row j) for r < 4.
using VecDotQ8Rows4 = void (*)(const std::byte* w, size_t row_bytes, const Q8Block* act, size_t act_stride,
                               int n_act, int n_blocks, float* out, size_t out_stride);

// One BF16 weight row of n elements against n_act float activation rows (row j at act + j * act_stride):
// out[j * out_stride] = dot(weight row, activation row j).
using VecDotBf16 = void (*)(const uint16_t* w, const float* act, size_t act_stride, int n_act, int n, float* out,
                            size_t out_stride);

struct KernelTable {
  const char* name;
  float (*dot_f32)(const float* a, const float* b, int n);
  void (*scale_f32)(float a, float* y, int n);                 // y *= a
  void (*f16_to_f32)(const uint16_t* in, float* out, int n);
  void (*f32_to_f16)(const float* in, uint16_t* out, int n);   // round to nearest even
  void (*bf16_to_f32)(const uint16_t* in, float* out, int n);
  void (*quantize_q8)(const float* x, Q8Block* out, int n);    // n a multiple of 32
  VecDotQ8 vec_q8_0;  // weight blocks: Q8_0 (fp16 d, 32 x int8)
  VecDotQ8 vec_q4_0;  // weight blocks: Q4_0 (fp16 d, 16 bytes of nibbles, value = d * (q - 8))
  // The other block formats, as laid out in tensor/block_layouts.h. For the K-quants n_blocks counts the
  // 32-element activation blocks and must be a multiple of 8 (one 256-element super-block each).
  VecDotQ8 vec_q4_1;
  VecDotQ8 vec_q5_0;
  VecDotQ8 vec_q5_1;
  VecDotQ8 vec_q2_k;
  VecDotQ8 vec_q3_k;
  VecDotQ8 vec_q4_k;
  VecDotQ8 vec_q5_k;
  VecDotQ8 vec_q6_k;
  // Attention over one block of cached positions whose rows lie `stride` floats apart.
  // out[s] = scale * dot(q, rows[s]) for s < n_rows.
  void (*attn_scores)(const float* q, const float* rows, size_t stride, int n_rows, int n, float scale, float* out);
  // x[i] = exp(x[i] - shift); returns the sum of the new x.
  float (*exp_shifted_sum)(float* x, float shift, int n);
  // y = y_scale * y + sum over s < n_rows of w[s] * rows[s].
  void (*attn_accumulate)(const float* w, const float* rows, size_t stride, int n_rows, int n, float y_scale,
                          float* y);
  // Q4_0 four weight rows at a time (nullptr: one row at a time through vec_q4_0). One reduction then yields
  // the four rows' block sums side by side, so the scales multiply as one vector instead of row by row.
  VecDotQ8Rows4 rows4_q4_0;
  // Eight rows of an interleaved Q4_0 / Q8_0 matrix (interleaved_weights.h; w is the group's first block)
  // against n_act activation rows: out[j * out_stride + r] for r < 8. nullptr: the table has no such kernel
  // and weights stay in GGUF order.
  VecDotQ8 x8_q4_0;
  VecDotQ8 x8_q8_0;
  // BF16 weights against float activations (nullptr: weights converted to float a row at a time).
  VecDotBf16 vec_bf16;
  // Where the CPU multiplies BF16 pairs itself (AVX512_BF16's vdpbf16ps; nullptr elsewhere): activations are
  // rounded to BF16 once per product (to nearest even), then each weight row runs against them.
  void (*round_to_bf16)(const float* in, uint16_t* out, int n);
  void (*vec_bf16_pairs)(const uint16_t* w, const uint16_t* act, size_t act_stride, int n_act, int n, float* out,
                         size_t out_stride);
  // Q8_0 blocks (a q8_0 KV cache's rows) to float, n a multiple of 32; bit-exact with tensor::dequantize,
  // which serves where this is nullptr.
  void (*q8_0_to_f32)(const std::byte* blocks, float* out, int n);
  // Eight rows of an interleaved Q4_K matrix, as x8_q4_0 (n_blocks a multiple of 8).
  VecDotQ8 x8_q4_k;
  VecDotQ8 x8_q6_k;  // likewise for Q6_K
};

const KernelTable& scalar_kernels();
const KernelTable* avx2_kernels();    // nullptr when this CPU lacks AVX2/FMA/F16C
// nullptr when this CPU lacks AVX-512 F/BW/VL/VNNI; the "avx512-bf16" variant where it also has AVX512_BF16.
const KernelTable* avx512_kernels();
const KernelTable* neon_kernels();          // AArch64 NEON (every AArch64 CPU); nullptr elsewhere
const KernelTable* neon_dotprod_kernels();  // NEON with the Armv8.2 dot product; nullptr without it
// Best available; PENSIEVE_ISA=scalar|avx2|avx512|neon|neon-dotprod overrides.
const KernelTable& pick_kernels();

}  // namespace pensieve::backend::cpu
