#pragma once
// Q4_0, Q8_0, Q4_K and Q6_K weights re-laid out at load so that eight rows are read side by side.
//
// In GGUF order one row's blocks follow each other, so a SIMD dot product ends in a horizontal sum per
// (row, activation) pair and every 32-element block is scaled on its own. Interleaved, one 32-byte load holds
// four consecutive weights of each of eight rows: multiplied by four activation bytes broadcast to every lane,
// each 32-bit lane accumulates one row's dot product, so a block's eight results are one vector, scaled by the
// eight rows' scales at once, and nothing is ever summed across lanes.
//
// Layout of a group of eight rows (rows 8g..8g+7), block b of each, at byte (g * n_blocks + b) * group_block:
//   8 x fp16 scales (row order), then chunks of 32 bytes, each [row 0: 4 bytes][row 1: 4 bytes]...[row 7].
//   Q8_0: 8 chunks; chunk c holds weights 4c..4c+3 of every row (272 bytes in all).
//   Q4_0: 4 chunks; chunk c holds the row's packed bytes 4c..4c+3, i.e. weights 4c..4c+3 in the low nibbles
//   and 16+4c..16+4c+3 in the high ones (144 bytes in all).
// Q4_K (256-element super-blocks): 8 x fp16 d, 8 x fp16 dmin, then the 12 packed scale/min bytes as 12 runs
//   of 8 (byte j of every row), then 32 chunks; chunk u holds the row's quant bytes 4u..4u+3, i.e. weights
//   of group 2(u / 8) in the low nibbles and of group 2(u / 8) + 1 in the high ones (1152 bytes in all).
// Q6_K: 8 x fp16 d, the 16 int8 scales as 16 runs of 8, then 32 chunks of the rows' ql bytes (4 each) and 16
//   chunks of their qh bytes (1680 bytes in all); which element a nibble or bit pair is stays as in GGUF.
// The bytes per row are unchanged, so a repacked matrix is exactly as large as the original.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/cpu/kernels.h"

namespace pensieve::backend::cpu {

inline constexpr int kInterleavedRows = 8;
inline constexpr size_t kQ4_0x8GroupBlockBytes = 144;
inline constexpr size_t kQ8_0x8GroupBlockBytes = 272;
inline constexpr size_t kQ4_Kx8GroupBlockBytes = 1152;
inline constexpr size_t kQ6_Kx8GroupBlockBytes = 1680;

enum class WeightLayout : int {
  Rows = 0,             // GGUF order
  Q4_0Interleaved8 = 1,
  Q8_0Interleaved8 = 2,
  Q4_KInterleaved8 = 3,
  Q6_KInterleaved8 = 4,
};

// True when `type_id` has an interleaved layout and `rows` divides into groups of eight.
bool can_interleave(uint32_t type_id, int64_t rows);

// The interleaved copy of a Q4_0, Q8_0, Q4_K or Q6_K matrix (row_bytes per row, rows a multiple of 8).
std::vector<std::byte> interleave_rows(uint32_t type_id, std::span<const std::byte> data, int64_t rows,
                                       size_t row_bytes);

// Row `row` of an interleaved matrix back in GGUF order (row_bytes long), for table lookups of a tied
// embedding.
void gather_row(WeightLayout layout, std::span<const std::byte> data, int64_t row, size_t row_bytes,
                std::span<std::byte> out);

// The scalar reference of KernelTable::x8_q4_0 / x8_q8_0 / x8_q4_k / x8_q6_k, which every SIMD version is tested against.
void reference_x8_q4_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride);
void reference_x8_q8_0(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride);
// n_blocks counts 32-element activation blocks, a multiple of 8 (one Q4_K super-block each).
void reference_x8_q4_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride);
void reference_x8_q6_k(const std::byte* w, const Q8Block* act, size_t act_stride, int n_act, int n_blocks, float* out,
                       size_t out_stride);

}  // namespace pensieve::backend::cpu
