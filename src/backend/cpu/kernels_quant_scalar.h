#pragma once
// Internal: the scalar reference int8 dot products of the formats with sub-block scales, mins or a fifth
// bit (kernels_quant_scalar.cpp), entered into the scalar kernel table.
#include "backend/cpu/kernels.h"

namespace pensieve::backend::cpu::scalar {

void vec_q4_1(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);
void vec_q5_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);
void vec_q5_1(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);
void vec_q2_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);
void vec_q3_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);
void vec_q4_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);
void vec_q5_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);
void vec_q6_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
              size_t out_stride);

}  // namespace pensieve::backend::cpu::scalar
