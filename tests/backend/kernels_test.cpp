// Every SIMD kernel table this CPU runs, against the scalar reference table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "backend/cpu/kernels.h"
#include "gguf/ggml_type.h"
#include "tensor/dequantize.h"
#include "tensor/quantize.h"

#include "kernel_tables.h"
#include "random_floats.h"

namespace pensieve::backend::cpu {
namespace {

using test_inputs::simd_tables;

using test_inputs::random_floats;

TEST(Kernels, ThisMachineHasSimdTables) {
  // The build machine has AVX2 and AVX-512 VNNI; losing a table silently would make these tests vacuous.
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) {
    EXPECT_NE(avx2_kernels(), nullptr);
  }
  if (__builtin_cpu_supports("avx512vnni")) {
    EXPECT_NE(avx512_kernels(), nullptr);
    if (__builtin_cpu_supports("avx512bf16")) {
      EXPECT_STREQ(avx512_kernels()->name, "avx512-bf16");
    }
  }
  EXPECT_EQ(neon_kernels(), nullptr);
  EXPECT_EQ(neon_dotprod_kernels(), nullptr);
#elif defined(__aarch64__)
  // NEON is part of every AArch64 CPU; the dot product table comes and goes with the CPU (qemu -cpu max has
  // it, cortex-a53 does not) and pick_kernels() must follow.
  ASSERT_NE(neon_kernels(), nullptr);
  EXPECT_STREQ(neon_kernels()->name, "neon");
  const KernelTable* dotprod = neon_dotprod_kernels();
  if (dotprod != nullptr) {
    EXPECT_STREQ(dotprod->name, "neon-dotprod");
  }
  // scripts/test-arm64.sh says which emulated CPU it chose, so the detection itself is checked.
  if (const char* expect = std::getenv("PENSIEVE_EXPECT_DOTPROD")) {
    EXPECT_EQ(dotprod != nullptr, std::string_view(expect) == "1");
  }
  const char* isa = std::getenv("PENSIEVE_ISA");
  if (isa == nullptr) {
    EXPECT_EQ(&pick_kernels(), dotprod != nullptr ? dotprod : neon_kernels());
  } else if (std::string_view(isa) == "neon") {
    EXPECT_EQ(&pick_kernels(), neon_kernels());
  }
#endif
  EXPECT_STREQ(scalar_kernels().name, "scalar");
}

TEST(Kernels, FloatDotAxpyScaleMatchScalar) {
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* k : simd_tables()) {
    for (int n : {1, 7, 8, 15, 16, 31, 32, 33, 64, 100, 896, 1031}) {
      auto a = random_floats(static_cast<size_t>(n), 1 + n), b = random_floats(static_cast<size_t>(n), 2 + n);
      double exact = 0, mag = 0;
      for (int i = 0; i < n; ++i) {
        exact += static_cast<double>(a[i]) * b[i];
        mag += std::fabs(static_cast<double>(a[i]) * b[i]);
      }
      EXPECT_NEAR(k->dot_f32(a.data(), b.data(), n), ref.dot_f32(a.data(), b.data(), n), 1e-5 * mag) << k->name << " n=" << n;
      EXPECT_NEAR(k->dot_f32(a.data(), b.data(), n), exact, 1e-5 * mag) << k->name;
      auto y1 = b, y2 = b;
      k->scale_f32(1.7f, y1.data(), n);
      ref.scale_f32(1.7f, y2.data(), n);
      for (int i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 1e-6f * (1 + std::fabs(y2[i])));
    }
  }
}

TEST(Kernels, HalfAndBfloatConversionsAreBitExact) {
  const KernelTable& ref = scalar_kernels();
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> a(all.size()), b(all.size());
  for (const KernelTable* k : simd_tables()) {
    k->f16_to_f32(all.data(), a.data(), static_cast<int>(all.size()));
    ref.f16_to_f32(all.data(), b.data(), static_cast<int>(all.size()));
    for (size_t i = 0; i < all.size(); ++i) {
      if (std::isnan(b[i])) {
        EXPECT_TRUE(std::isnan(a[i]));
      } else {
        ASSERT_EQ(std::memcmp(&a[i], &b[i], 4), 0) << k->name << " f16 " << i;
      }
    }
    k->bf16_to_f32(all.data(), a.data(), static_cast<int>(all.size()));
    ref.bf16_to_f32(all.data(), b.data(), static_cast<int>(all.size()));
    for (size_t i = 0; i < all.size(); ++i) {
      if (!std::isnan(b[i])) {
        ASSERT_EQ(std::memcmp(&a[i], &b[i], 4), 0) << k->name << " bf16 " << i;
      }
    }
    auto x = random_floats(4099, 7, 100.0f);
    x[0] = 65520.0f;  // rounds to infinity
    x[1] = 1e-8f;     // subnormal half
    std::vector<uint16_t> h1(x.size()), h2(x.size());
    k->f32_to_f16(x.data(), h1.data(), static_cast<int>(x.size()));
    ref.f32_to_f16(x.data(), h2.data(), static_cast<int>(x.size()));
    EXPECT_EQ(h1, h2) << k->name;
  }
}

TEST(Kernels, ActivationQuantizationIsBitExact) {
  const KernelTable& ref = scalar_kernels();
  auto x = random_floats(32 * 40, 11, 3.0f);
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block
  x[200] = 0.5f;                                    // ties must round the same way
  std::vector<Q8Block> a(40), b(40);
  ref.quantize_q8(x.data(), b.data(), static_cast<int>(x.size()));
  for (int blk = 0; blk < 40; ++blk) {
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      sum += b[blk].qs[i];
      EXPECT_NEAR(b[blk].d * b[blk].qs[i], x[static_cast<size_t>(blk * 32 + i)], b[blk].d * 0.5f + 1e-7f);
    }
    EXPECT_EQ(sum, b[blk].sum);
  }
  for (const KernelTable* k : simd_tables()) {
    k->quantize_q8(x.data(), a.data(), static_cast<int>(x.size()));
    for (int blk = 0; blk < 40; ++blk) {
      EXPECT_EQ(a[blk].d, b[blk].d) << k->name;
      EXPECT_EQ(a[blk].sum, b[blk].sum) << k->name;
      EXPECT_EQ(std::memcmp(a[blk].qs, b[blk].qs, 32), 0) << k->name << " block " << blk;
    }
  }
}

void check_vec_dot(gguf::GgmlType type, VecDotQ8 KernelTable::*vec) {
  const int n_blocks = 28;  // 896 columns, qwen2.5-0.5b's width
  const int n_act = 9;      // more than one activation group, with a remainder
  auto w = random_floats(static_cast<size_t>(n_blocks) * 32, 3);
  std::vector<std::byte> wq(*gguf::bytes_for(static_cast<uint32_t>(type), w.size()));
  tensor::quantize(type, w, wq);
  auto x = random_floats(static_cast<size_t>(n_blocks) * 32 * n_act, 5);
  std::vector<Q8Block> act(static_cast<size_t>(n_blocks) * n_act);
  scalar_kernels().quantize_q8(x.data(), act.data(), static_cast<int>(x.size()));
  std::vector<float> expected(n_act), got(n_act * 2);
  (scalar_kernels().*vec)(wq.data(), act.data(), n_blocks, n_act, n_blocks, expected.data(), 1);
  for (const KernelTable* k : simd_tables()) {
    (k->*vec)(wq.data(), act.data(), n_blocks, n_act, n_blocks, got.data(), 2);  // strided output
    for (int j = 0; j < n_act; ++j) {
      EXPECT_NEAR(got[static_cast<size_t>(2 * j)], expected[static_cast<size_t>(j)], 1e-4f * (1 + std::fabs(expected[static_cast<size_t>(j)])))
          << k->name << " " << gguf::type_name(static_cast<uint32_t>(type)) << " row " << j;
    }
  }
}

TEST(Kernels, Int8DotsMatchScalarForQ8_0) { check_vec_dot(gguf::GgmlType::Q8_0, &KernelTable::vec_q8_0); }
TEST(Kernels, Int8DotsMatchScalarForQ4_0) { check_vec_dot(gguf::GgmlType::Q4_0, &KernelTable::vec_q4_0); }

// BF16 weight rows against float activations, with a tail that is not a whole vector and strided outputs,
// against a double reference.
TEST(Kernels, Bf16WeightRowsAgainstDoubleReference) {
  const std::vector<const KernelTable*> tables = test_inputs::all_tables();
  for (int n : {32, 75, 512}) {
    const auto dense = random_floats(static_cast<size_t>(n), 41);
    std::vector<uint16_t> w(static_cast<size_t>(n));
    tensor::quantize(gguf::GgmlType::BF16, dense, std::as_writable_bytes(std::span(w)));
    for (int n_act : {1, 3, 4, 6}) {
      const auto act = random_floats(static_cast<size_t>(n_act * n), 43 + static_cast<uint32_t>(n_act));
      for (const KernelTable* k : tables) {
        if (k->vec_bf16 == nullptr) continue;
        const size_t out_stride = 2;
        std::vector<float> out(static_cast<size_t>(n_act) * out_stride, -7.0f);
        k->vec_bf16(w.data(), act.data(), static_cast<size_t>(n), n_act, n, out.data(), out_stride);
        for (int j = 0; j < n_act; ++j) {
          double exact = 0, mag = 0;
          for (int i = 0; i < n; ++i) {
            uint32_t bits = static_cast<uint32_t>(w[static_cast<size_t>(i)]) << 16;
            float wf;
            std::memcpy(&wf, &bits, 4);
            exact += static_cast<double>(wf) * act[static_cast<size_t>(j * n + i)];
            mag += std::fabs(static_cast<double>(wf) * act[static_cast<size_t>(j * n + i)]);
          }
          const double tol = 1e-5 * mag + 1e-6;
          EXPECT_NEAR(out[static_cast<size_t>(j) * out_stride], exact, tol) << k->name << " n " << n << " act " << j;
          EXPECT_EQ(out[static_cast<size_t>(j) * out_stride + 1], -7.0f) << k->name << ": wrote past its output";
        }
      }
    }
  }
#if defined(__x86_64__)
  if (avx2_kernels() != nullptr) {
    EXPECT_NE(avx2_kernels()->vec_bf16, nullptr);
  }
#elif defined(__aarch64__)
  ASSERT_NE(neon_kernels(), nullptr);
  EXPECT_NE(neon_kernels()->vec_bf16, nullptr);
  if (neon_dotprod_kernels() != nullptr) {
    EXPECT_NE(neon_dotprod_kernels()->vec_bf16, nullptr);
  }
#endif
}

float bf16_value(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Tables that multiply BF16 pairs (AVX512_BF16): activations round to nearest even exactly as the BF16
// quantizer does (ties included), and the pair products match a double reference over the rounded values.
TEST(Kernels, Bf16PairsRoundLikeTheQuantizerAndMultiplyExactly) {
  std::vector<const KernelTable*> pairs;
  for (const KernelTable* k : simd_tables()) {
    if (k->vec_bf16_pairs != nullptr) pairs.push_back(k);
  }
  if (pairs.empty()) GTEST_SKIP() << "no kernel table on this CPU multiplies BF16 pairs (needs AVX512_BF16)";
  for (const KernelTable* k : pairs) {
    for (int n : {32, 75, 512}) {
      auto x = random_floats(static_cast<size_t>(4 * n), 51);
      x[0] = 1.0f + 1.0f / 256.0f;  // a tie: rounds to even (1.0)
      x[1] = 1.0f + 3.0f / 256.0f;  // a tie: rounds to even (1 + 4/256)
      std::vector<uint16_t> mine(x.size()), want(x.size());
      k->round_to_bf16(x.data(), mine.data(), static_cast<int>(x.size()));
      tensor::quantize(gguf::GgmlType::BF16, x, std::as_writable_bytes(std::span(want)));
      ASSERT_EQ(mine, want) << k->name << " n " << n;
      const auto wf = random_floats(static_cast<size_t>(n), 53);
      std::vector<uint16_t> w(static_cast<size_t>(n));
      tensor::quantize(gguf::GgmlType::BF16, wf, std::as_writable_bytes(std::span(w)));
      const size_t out_stride = 2;
      std::vector<float> out(4 * out_stride, -7.0f);
      k->vec_bf16_pairs(w.data(), mine.data(), static_cast<size_t>(n), 4, n, out.data(), out_stride);
      for (int j = 0; j < 4; ++j) {
        double exact = 0, mag = 0;
        for (int i = 0; i < n; ++i) {
          const double p = static_cast<double>(bf16_value(w[static_cast<size_t>(i)])) * bf16_value(mine[static_cast<size_t>(j * n + i)]);
          exact += p;
          mag += std::fabs(p);
        }
        EXPECT_NEAR(out[static_cast<size_t>(j) * out_stride], exact, 1e-5 * mag + 1e-6) << k->name << " n " << n;
        EXPECT_EQ(out[static_cast<size_t>(j) * out_stride + 1], -7.0f);
      }
    }
  }
}

// A q8_0 KV cache's rows decoded by a table's kernel are bit for bit what tensor::dequantize gives.
TEST(Kernels, Q8_0RowsToFloatAreBitExact) {
  const int n = 256;
  auto x = random_floats(static_cast<size_t>(n), 61, 3.0f);
  x[5] = 0.0f;
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block: scale 0
  std::vector<std::byte> blocks(*gguf::bytes_for(static_cast<uint32_t>(gguf::GgmlType::Q8_0), n));
  tensor::quantize(gguf::GgmlType::Q8_0, x, blocks);
  std::vector<float> want(static_cast<size_t>(n));
  tensor::dequantize(static_cast<uint32_t>(gguf::GgmlType::Q8_0), blocks, want);
  int tested = 0;
  for (const KernelTable* k : simd_tables()) {
    if (k->q8_0_to_f32 == nullptr) continue;
    ++tested;
    std::vector<float> got(static_cast<size_t>(n), -1.0f);
    k->q8_0_to_f32(blocks.data(), got.data(), n);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << k->name;
  }
#if defined(__x86_64__)
  if (avx2_kernels() != nullptr) {
    EXPECT_GT(tested, 0);
  }
#endif
}

}  // namespace
}  // namespace pensieve::backend::cpu
