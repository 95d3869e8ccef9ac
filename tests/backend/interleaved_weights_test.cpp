// The interleaved Q4_0/Q8_0 layout: a lossless rearrangement, and kernels over it that agree with the
// one-row kernels over the GGUF order.
#include "backend/cpu/interleaved_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "gguf/ggml_type.h"
#include "tensor/quantize.h"

#include "kernel_tables.h"
#include "random_floats.h"

namespace pensieve::backend::cpu {
namespace {

using test_inputs::random_floats;

struct Matrix {
  uint32_t type;
  int64_t rows;
  int cols;
  size_t row_bytes;
  std::vector<std::byte> bytes;
};

Matrix quantized(gguf::GgmlType type, int64_t rows, int cols, uint32_t seed) {
  Matrix m{static_cast<uint32_t>(type), rows, cols, *gguf::bytes_for(static_cast<uint32_t>(type), static_cast<uint64_t>(cols)), {}};
  auto dense = random_floats(static_cast<size_t>(rows) * static_cast<size_t>(cols), seed);
  m.bytes.resize(m.row_bytes * static_cast<size_t>(rows));
  tensor::quantize(type, dense, m.bytes);
  return m;
}

WeightLayout layout_of(gguf::GgmlType t) {
  if (t == gguf::GgmlType::Q4_K) return WeightLayout::Q4_KInterleaved8;
  if (t == gguf::GgmlType::Q6_K) return WeightLayout::Q6_KInterleaved8;
  return t == gguf::GgmlType::Q4_0 ? WeightLayout::Q4_0Interleaved8 : WeightLayout::Q8_0Interleaved8;
}

TEST(InterleavedWeights, OnlyQ4_0Q8_0Q4_KAndQ6_KInWholeGroupsOfEight) {
  EXPECT_TRUE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::Q4_0), 16));
  EXPECT_TRUE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::Q8_0), 8));
  EXPECT_FALSE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::Q8_0), 12));
  EXPECT_TRUE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::Q4_K), 16));
  EXPECT_FALSE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::Q5_K), 16));
  EXPECT_TRUE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::Q6_K), 16));
  EXPECT_FALSE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::Q3_K), 16));
  EXPECT_FALSE(can_interleave(static_cast<uint32_t>(gguf::GgmlType::F16), 16));
  const Matrix m = quantized(gguf::GgmlType::Q8_0, 12, 64, 1);
  EXPECT_THROW(interleave_rows(m.type, m.bytes, m.rows, m.row_bytes), std::invalid_argument);
}

// Every row gathered back from the interleaved copy is byte for byte the original row, and the copy is a
// different arrangement (a layout that changed nothing would pass the first check trivially).
TEST(InterleavedWeights, GatherRowUndoesInterleaving) {
  for (auto type : {gguf::GgmlType::Q4_0, gguf::GgmlType::Q8_0, gguf::GgmlType::Q4_K, gguf::GgmlType::Q6_K}) {
    const bool k_quant = type == gguf::GgmlType::Q4_K || type == gguf::GgmlType::Q6_K;
    const Matrix m = quantized(type, 24, k_quant ? 512 : 96, 2);
    const auto packed = interleave_rows(m.type, m.bytes, m.rows, m.row_bytes);
    ASSERT_EQ(packed.size(), m.bytes.size());
    EXPECT_NE(packed, m.bytes);
    std::vector<std::byte> row(m.row_bytes);
    for (int64_t r = 0; r < m.rows; ++r) {
      gather_row(layout_of(type), packed, r, m.row_bytes, row);
      ASSERT_TRUE(std::equal(row.begin(), row.end(), m.bytes.begin() + r * static_cast<int64_t>(m.row_bytes)))
          << gguf::type_name(m.type) << " row " << r;
    }
  }
}

// Each interleaved kernel (the scalar reference and every SIMD table's) against the scalar one-row kernel
// on the GGUF order: the same integer block sums, so agreement to float rounding, with strided outputs whose
// other columns must stay untouched.
TEST(InterleavedWeights, KernelsMatchTheOneRowKernels) {
  const std::vector<const KernelTable*> tables = test_inputs::all_tables();
  int simd_tested = 0, simd_tested_q4_k = 0, simd_tested_q6_k = 0;
  for (auto type : {gguf::GgmlType::Q4_0, gguf::GgmlType::Q8_0, gguf::GgmlType::Q4_K, gguf::GgmlType::Q6_K}) {
    const bool q4_k = type == gguf::GgmlType::Q4_K, q6_k = type == gguf::GgmlType::Q6_K;
    const int cols = q4_k || q6_k ? 512 : 320, n_blocks = cols / kQ8BlockElements;
    const Matrix m = quantized(type, 16, cols, 3);
    const auto packed = interleave_rows(m.type, m.bytes, m.rows, m.row_bytes);
    VecDotQ8 one_row = scalar_kernels().vec_q8_0, reference = reference_x8_q8_0;
    VecDotQ8 KernelTable::*member = &KernelTable::x8_q8_0;
    if (type == gguf::GgmlType::Q4_0) {
      one_row = scalar_kernels().vec_q4_0, reference = reference_x8_q4_0, member = &KernelTable::x8_q4_0;
    } else if (q4_k) {
      one_row = scalar_kernels().vec_q4_k, reference = reference_x8_q4_k, member = &KernelTable::x8_q4_k;
    } else if (q6_k) {
      one_row = scalar_kernels().vec_q6_k, reference = reference_x8_q6_k, member = &KernelTable::x8_q6_k;
    }
    std::vector<VecDotQ8> kernels{reference};
    for (const KernelTable* k : tables) {
      if (k->*member != nullptr) {
        kernels.push_back(k->*member);
        ++(q4_k ? simd_tested_q4_k : q6_k ? simd_tested_q6_k : simd_tested);
      }
    }
    for (int n_act : {1, 2, 3, 4, 5, 9}) {
      auto x = random_floats(static_cast<size_t>(n_act) * cols, 11 + static_cast<uint32_t>(n_act));
      std::vector<Q8Block> act(static_cast<size_t>(n_act * n_blocks));
      for (int j = 0; j < n_act; ++j) scalar_kernels().quantize_q8(x.data() + j * cols, act.data() + j * n_blocks, cols);
      const size_t out_stride = static_cast<size_t>(m.rows) + 3;
      std::vector<float> expected(static_cast<size_t>(n_act) * out_stride, -1.0f);
      for (int64_t r = 0; r < m.rows; ++r) {
        one_row(m.bytes.data() + static_cast<size_t>(r) * m.row_bytes, act.data(), n_blocks, n_act, n_blocks,
                expected.data() + r, out_stride);
      }
      for (size_t ki = 0; ki < kernels.size(); ++ki) {
        std::vector<float> got(expected.size(), -1.0f);
        for (int64_t g = 0; g < m.rows / kInterleavedRows; ++g) {
          kernels[ki](packed.data() + static_cast<size_t>(g) * kInterleavedRows * m.row_bytes, act.data(), n_blocks,
                      n_act, n_blocks, got.data() + g * kInterleavedRows, out_stride);
        }
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_NEAR(got[i], expected[i], 1e-4 * (1.0 + std::fabs(expected[i])))
              << gguf::type_name(m.type) << " kernel " << ki << " n_act " << n_act << " at " << i;
        }
      }
    }
  }
  // Every AVX2, AVX-512 and NEON table has all four interleaved kernels.
  if (avx2_kernels() != nullptr || neon_kernels() != nullptr) {
    EXPECT_EQ(simd_tested, 2 * (static_cast<int>(tables.size()) - 1));
  }
  EXPECT_EQ(simd_tested_q4_k, static_cast<int>(tables.size()) - 1);
  EXPECT_EQ(simd_tested_q6_k, static_cast<int>(tables.size()) - 1);
#if defined(__aarch64__)
  EXPECT_NE(neon_kernels(), nullptr);
#endif
}

}  // namespace
}  // namespace pensieve::backend::cpu
