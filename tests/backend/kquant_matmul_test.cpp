// The int8 dot products of Q4_1, Q5_0, Q5_1 and the K-quants: the scalar table against dequantize-then-dot
// in double, every SIMD table against the scalar one. Weights are random bytes (every bit pattern of
// quants and packed scales is a valid block) with the fp16 scale fields set to finite values of either sign.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <ostream>
#include <random>
#include <vector>

#include "backend/cpu/kernels.h"
#include "gguf/ggml_type.h"
#include "tensor/block_layouts.h"
#include "tensor/dequantize.h"

#include "kernel_tables.h"

namespace pensieve::backend::cpu {
namespace {

using gguf::GgmlType;

struct Format {
  GgmlType type;
  VecDotQ8 KernelTable::*vec;
  size_t block_bytes;
  std::vector<size_t> half_fields;  // byte offsets of the block's fp16 scales
};

void PrintTo(const Format& f, std::ostream* os) { *os << gguf::type_name(static_cast<uint32_t>(f.type)); }

std::vector<Format> formats() {
  using namespace tensor;
  return {
      {GgmlType::Q4_1, &KernelTable::vec_q4_1, sizeof(BlockQ4_1), {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)}},
      {GgmlType::Q5_0, &KernelTable::vec_q5_0, sizeof(BlockQ5_0), {offsetof(BlockQ5_0, d)}},
      {GgmlType::Q5_1, &KernelTable::vec_q5_1, sizeof(BlockQ5_1), {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)}},
      {GgmlType::Q2_K, &KernelTable::vec_q2_k, sizeof(BlockQ2_K), {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)}},
      {GgmlType::Q3_K, &KernelTable::vec_q3_k, sizeof(BlockQ3_K), {offsetof(BlockQ3_K, d)}},
      {GgmlType::Q4_K, &KernelTable::vec_q4_k, sizeof(BlockQ4_K), {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)}},
      {GgmlType::Q5_K, &KernelTable::vec_q5_k, sizeof(BlockQ5_K), {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)}},
      {GgmlType::Q6_K, &KernelTable::vec_q6_k, sizeof(BlockQ6_K), {offsetof(BlockQ6_K, d)}},
  };
}

using test_inputs::simd_tables;

std::vector<std::byte> random_weights(const Format& f, size_t n_elements, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t bytes = *gguf::bytes_for(static_cast<uint32_t>(f.type), n_elements);
  std::vector<std::byte> w(bytes);
  for (auto& b : w) b = static_cast<std::byte>(rng() & 0xFF);
  std::uniform_real_distribution<float> magnitude(0.001f, 0.05f);
  for (size_t blk = 0; blk < bytes / f.block_bytes; ++blk) {
    for (size_t field : f.half_fields) {
      const uint16_t h = tensor::fp32_to_fp16((rng() & 1 ? 1.0f : -1.0f) * magnitude(rng));
      std::memcpy(w.data() + blk * f.block_bytes + field, &h, 2);
    }
  }
  return w;
}

// Activation rows drawn straight as int8 blocks, so the extremes -127 and 127 come up often.
std::vector<Q8Block> random_activations(size_t n_blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> q(-127, 127);
  std::uniform_real_distribution<float> d(0.001f, 0.1f);
  std::vector<Q8Block> a(n_blocks);
  for (auto& blk : a) {
    blk.d = d(rng);
    blk.sum = 0;
    for (auto& v : blk.qs) {
      v = static_cast<int8_t>(q(rng));
      blk.sum += v;
    }
  }
  return a;
}

struct Reference {
  double dot;
  double magnitude;  // sum |w*a|, the scale of the rounding error
};

Reference dequantized_dot(const Format& f, const std::byte* row, size_t cols, const Q8Block* a) {
  std::vector<float> w(cols);
  tensor::dequantize(static_cast<uint32_t>(f.type), {row, *gguf::bytes_for(static_cast<uint32_t>(f.type), cols)}, w);
  Reference r{0, 0};
  for (size_t i = 0; i < cols; ++i) {
    const double x = static_cast<double>(a[i / 32].d) * a[i / 32].qs[i % 32];
    r.dot += w[i] * x;
    r.magnitude += std::fabs(w[i] * x);
  }
  return r;
}

// Runs `vec` over `rows` weight rows against n_act activation rows laid out with a stride wider than a row
// (as a tile of a larger batch), writing with an output stride, and returns out[row][act].
std::vector<float> run_rows(VecDotQ8 vec, const Format& f, const std::vector<std::byte>& w, int rows, int cols,
                            const std::vector<Q8Block>& act, size_t act_stride, int n_act) {
  const size_t row_bytes = *gguf::bytes_for(static_cast<uint32_t>(f.type), static_cast<size_t>(cols));
  const size_t out_stride = 3;
  std::vector<float> out(static_cast<size_t>(rows) * static_cast<size_t>(n_act) * out_stride, NAN);
  std::vector<float> got(static_cast<size_t>(rows) * static_cast<size_t>(n_act));
  for (int r = 0; r < rows; ++r) {
    float* o = out.data() + static_cast<size_t>(r) * static_cast<size_t>(n_act) * out_stride;
    vec(w.data() + static_cast<size_t>(r) * row_bytes, act.data(), act_stride, n_act, cols / 32, o, out_stride);
    for (int j = 0; j < n_act; ++j) got[static_cast<size_t>(r * n_act + j)] = o[static_cast<size_t>(j) * out_stride];
  }
  return got;
}

class QuantDot : public ::testing::TestWithParam<Format> {};

TEST_P(QuantDot, ScalarMatchesDequantizedDotAndSimdMatchesScalar) {
  const Format& f = GetParam();
  const int rows = 3, cols = 1024;  // four super-blocks, 32 legacy blocks per row
  const auto w = random_weights(f, static_cast<size_t>(rows) * cols, 17 + static_cast<uint32_t>(f.type));
  const size_t row_bytes = *gguf::bytes_for(static_cast<uint32_t>(f.type), cols);
  for (int n_act : {1, 2, 3, 4, 5, 9}) {
    const size_t act_stride = cols / 32 + 8;
    const auto act = random_activations(act_stride * static_cast<size_t>(n_act), 100 + static_cast<uint32_t>(n_act));
    const auto expected = run_rows(scalar_kernels().*f.vec, f, w, rows, cols, act, act_stride, n_act);
    std::vector<Reference> refs;
    for (int r = 0; r < rows; ++r) {
      for (int j = 0; j < n_act; ++j) {
        refs.push_back(dequantized_dot(f, w.data() + static_cast<size_t>(r) * row_bytes, cols,
                                       act.data() + static_cast<size_t>(j) * act_stride));
        const Reference& ref = refs.back();
        EXPECT_NEAR(expected[refs.size() - 1], ref.dot, 3e-5 * ref.magnitude)
            << gguf::type_name(static_cast<uint32_t>(f.type)) << " scalar, row " << r << " act " << j << " of " << n_act;
      }
    }
    for (const KernelTable* k : simd_tables()) {
      const auto got = run_rows(k->*f.vec, f, w, rows, cols, act, act_stride, n_act);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], expected[i], 1e-5 * refs[i].magnitude)
            << gguf::type_name(static_cast<uint32_t>(f.type)) << " " << k->name << ", output " << i << " of n_act " << n_act;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantDot, ::testing::ValuesIn(formats()),
                         [](const ::testing::TestParamInfo<Format>& info) {
                           return std::string(gguf::type_name(static_cast<uint32_t>(info.param.type)));
                         });

}  // namespace
}  // namespace pensieve::backend::cpu
