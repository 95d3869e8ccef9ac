// CpuBackend::matmul for every weight type, on every kernel table, against dequantize-then-dot in double.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "gguf/gguf_file.h"
#include "tensor/dequantize.h"
#include "tensor/quantize.h"

#include "kernel_tables.h"
#include "random_floats.h"

namespace pensieve::backend::cpu {
namespace {

using test_inputs::all_tables;

using test_inputs::random_floats;

bool uses_int8_activations(uint32_t type) {
  using gguf::GgmlType;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,
                     GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    if (type == static_cast<uint32_t>(t)) return true;
  }
  return false;
}

// Checks y = x W^T. The int8 paths round each activation to within half a step (amax/127/2) of its block,
// so their error is bounded by sum_blocks(sum|w| * amax/254); float paths only by summation order.
Weight weight_view(std::string name, uint32_t type, int64_t rows, int64_t cols, std::span<const std::byte> bytes) {
  Weight w;
  w.name = std::move(name);
  w.type_id = type;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = *gguf::bytes_for(type, static_cast<uint64_t>(cols));
  w.data = bytes;
  return w;
}

// interleave: each backend may re-lay the weight out first (prepare), as a model load does.
void check_matmul(const Weight& w, int n, bool interleave = false) {
  const size_t cols = static_cast<size_t>(w.cols);
  auto x = random_floats(static_cast<size_t>(n) * cols, 99);
  std::vector<float> dense(static_cast<size_t>(w.rows) * cols);
  tensor::dequantize(w.type_id, w.data.first(static_cast<size_t>(w.rows) * w.row_bytes), dense);
  for (const KernelTable* k : all_tables()) {
    CpuBackend be(2, *k, interleave);
    Weight prepared = w;
    be.prepare(prepared, Backend::WeightUse::Matrix);
    std::vector<float> y(static_cast<size_t>(n) * static_cast<size_t>(w.rows));
    be.matmul(prepared, x.data(), n, y.data());
    for (int j = 0; j < n; ++j) {
      const float* xj = x.data() + static_cast<size_t>(j) * cols;
      for (int64_t r = 0; r < w.rows; ++r) {
        const float* wr = dense.data() + static_cast<size_t>(r) * cols;
        double exact = 0, mag = 0, quant_bound = 0;
        for (size_t b0 = 0; b0 < cols; b0 += 32) {
          double amax = 0, wabs = 0;
          for (size_t i = b0; i < b0 + 32 && i < cols; ++i) {
            exact += static_cast<double>(wr[i]) * xj[i];
            mag += std::fabs(static_cast<double>(wr[i]) * xj[i]);
            amax = std::max(amax, static_cast<double>(std::fabs(xj[i])));
            wabs += std::fabs(wr[i]);
          }
          quant_bound += wabs * amax / 254.0;
        }
        // vdpbf16ps rounds the activations to BF16 as well: up to 2^-8 of each product.
        const bool bf16_activations = w.type_id == static_cast<uint32_t>(gguf::GgmlType::BF16) &&
                                      std::string(k->name) == "avx512-bf16";
        const double tol = 1e-5 * mag + (uses_int8_activations(w.type_id) ? quant_bound : 0.0) +
                           (bf16_activations ? mag / 256.0 : 0.0) + 1e-6;
        ASSERT_NEAR(y[static_cast<size_t>(j) * static_cast<size_t>(w.rows) + static_cast<size_t>(r)], exact, tol)
            << w.name << " (" << gguf::type_name(w.type_id) << ") on " << k->name << ", row " << r << ", act " << j;
      }
    }
  }
}

TEST(Matmul, QuantizedFromRandomWeights) {
  for (auto type : {gguf::GgmlType::F32, gguf::GgmlType::F16, gguf::GgmlType::BF16, gguf::GgmlType::Q8_0,
                    gguf::GgmlType::Q4_0, gguf::GgmlType::Q4_K, gguf::GgmlType::Q6_K}) {
    const int64_t rows = 37, cols = 512;
    auto dense = random_floats(static_cast<size_t>(rows * cols), 1);
    std::vector<std::byte> bytes(*gguf::bytes_for(static_cast<uint32_t>(type), dense.size()));
    tensor::quantize(type, dense, bytes);
    Weight w = weight_view("random", static_cast<uint32_t>(type), rows, cols, bytes);
    for (int n : {1, 3, 8, 70}) check_matmul(w, n);
  }
}

// A four-row kernel computes the same integer block sums as the one-row kernel, only reduced in another
// order: the results agree to float rounding, for every group size and with outputs strided.
TEST(Matmul, Q4_0FourRowsAtOnceMatchOneRowAtATime) {
  const int cols = 256, n_blocks = cols / kQ8BlockElements;
  auto dense = random_floats(4 * static_cast<size_t>(cols), 5);
  const size_t row_bytes = *gguf::bytes_for(static_cast<uint32_t>(gguf::GgmlType::Q4_0), cols);
  std::vector<std::byte> w(4 * row_bytes);
  tensor::quantize(gguf::GgmlType::Q4_0, dense, w);
  int tested = 0;
  for (const KernelTable* k : all_tables()) {
    if (k->rows4_q4_0 == nullptr) continue;
    ++tested;
    for (int n_act : {1, 2, 3, 4, 5, 9}) {
      auto x = random_floats(static_cast<size_t>(n_act) * cols, 7 + static_cast<uint32_t>(n_act));
      std::vector<Q8Block> act(static_cast<size_t>(n_act * n_blocks));
      for (int j = 0; j < n_act; ++j) k->quantize_q8(x.data() + j * cols, act.data() + j * n_blocks, cols);
      const size_t out_stride = 6;  // wider than the four rows: the columns past them must stay untouched
      std::vector<float> four(static_cast<size_t>(n_act) * out_stride, -1.0f), one(four);
      k->rows4_q4_0(w.data(), row_bytes, act.data(), n_blocks, n_act, n_blocks, four.data(), out_stride);
      for (int r = 0; r < 4; ++r) {
        scalar_kernels().vec_q4_0(w.data() + r * row_bytes, act.data(), n_blocks, n_act, n_blocks, one.data() + r,
                                  out_stride);
      }
      for (size_t i = 0; i < four.size(); ++i) {
        ASSERT_NEAR(four[i], one[i], 1e-5 * (1.0 + std::fabs(one[i]))) << k->name << " n_act " << n_act << " at " << i;
      }
    }
  }
  if (avx2_kernels() != nullptr) {
    EXPECT_GT(tested, 0) << "the AVX2 table has a four-row Q4_0 kernel";
  }
}

// Q4_0, Q8_0, Q4_K and Q6_K matrices whose rows come in eights are re-laid out by prepare() on tables that have the
// interleaved kernels; the products must still match the double reference, and the tied-embedding lookup
// must read the same rows back.
TEST(Matmul, InterleavedQ4_0Q8_0Q4_KAndQ6_K) {
  for (auto type : {gguf::GgmlType::Q8_0, gguf::GgmlType::Q4_0, gguf::GgmlType::Q4_K, gguf::GgmlType::Q6_K}) {
    const int64_t rows = 48, cols = 512;
    auto dense = random_floats(static_cast<size_t>(rows * cols), 3);
    std::vector<std::byte> bytes(*gguf::bytes_for(static_cast<uint32_t>(type), dense.size()));
    tensor::quantize(type, dense, bytes);
    const Weight w = weight_view("interleaved", static_cast<uint32_t>(type), rows, cols, bytes);
    for (int n : {1, 2, 5, 8, 70}) check_matmul(w, n, /*interleave=*/true);

    int interleaved = 0;
    for (const KernelTable* k : all_tables()) {
      CpuBackend be(1, *k);
      Weight prepared = w;
      be.prepare(prepared, Backend::WeightUse::Matrix);
      if (prepared.layout == 0) continue;
      ++interleaved;
      EXPECT_EQ(prepared.data.size(), w.data.size()) << "an interleaved copy is as large as the original";
      EXPECT_NE(prepared.data.data(), w.data.data());
      const std::vector<int32_t> tokens{0, 7, 8, 47, 13};
      std::vector<float> from_packed(tokens.size() * cols), from_rows(tokens.size() * cols);
      StepTables step{};
      step.tokens = tokens;
      be.embed(prepared, step, from_packed.data());
      be.embed(w, step, from_rows.data());
      EXPECT_EQ(from_packed, from_rows) << k->name;
    }
    if (avx2_kernels() != nullptr) {
      EXPECT_GT(interleaved, 0) << "the AVX2 table interleaves " << gguf::type_name(static_cast<uint32_t>(type));
    }
#if defined(__aarch64__)
    EXPECT_GT(interleaved, 0) << "the NEON table interleaves " << gguf::type_name(static_cast<uint32_t>(type));
#endif
    CpuBackend off(1, pick_kernels(), /*interleave=*/false);
    Weight kept = w;
    off.prepare(kept, Backend::WeightUse::Matrix);
    EXPECT_EQ(kept.layout, 0);
    EXPECT_EQ(kept.data.data(), w.data.data());
  }
}

// The llama.cpp-quantized fixtures hold real tensors of every format pensieve reads.
TEST(Matmul, EveryTensorTypeInTheQuantFixtures) {
  const auto dir = std::filesystem::path(PENSIEVE_FIXTURES_DIR) / "quant";
  std::set<std::string> seen;
  for (const char* name : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K",
                           "IQ4_NL", "IQ4_XS"}) {
    const auto f = gguf::GgufFile::open(dir / (std::string("llama3-tiny-") + name + ".gguf"));
    std::set<uint32_t> done;
    for (const auto& t : f.tensors()) {
      if (t.shape.size() != 2 || !done.insert(t.type_id).second) continue;
      Weight w = weight_view(t.name, t.type_id, static_cast<int64_t>(t.shape[1]), static_cast<int64_t>(t.shape[0]),
                             f.tensor_data(t));
      check_matmul(w, 5);
      check_matmul(w, 5, /*interleave=*/true);
      seen.insert(std::string(gguf::type_name(t.type_id)));
    }
  }
  for (const char* want : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}) {
    EXPECT_TRUE(seen.count(want)) << want << " was not exercised";
  }
}

}  // namespace
}  // namespace pensieve::backend::cpu
