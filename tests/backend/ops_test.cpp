// Attention over block tables, RoPE, RMSNorm and the thread pool against direct formulas.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "tensor/dequantize.h"

namespace pensieve::backend::cpu {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<const KernelTable*> all_tables() {
  std::vector<const KernelTable*> t{&scalar_kernels()};
  if (auto* k = avx2_kernels()) t.push_back(k);
  if (auto* k = avx512_kernels()) t.push_back(k);
  return t;
}

// Two sequences with scattered, interleaved blocks; GQA 6 query heads over 2 KV heads.
TEST(Attention, MatchesSoftmaxOverEachSequencesOwnPast) {
  constexpr int kHeads = 6, kKvHeads = 2, kHd = 40, kBt = 16, kBlocks = 8;
  const std::vector<int32_t> table_a{5, 1, 6};  // sequence 0: 40 tokens
  const std::vector<int32_t> table_b{2, 7};     // sequence 1: 20 tokens
  const int len[2] = {40, 20};
  auto keys = random_floats(2 * 40 * kKvHeads * kHd, 1), values = random_floats(2 * 40 * kKvHeads * kHd, 2);
  auto key = [&](int s, int p, int g) { return keys.data() + ((s * 40 + p) * kKvHeads + g) * kHd; };
  auto value = [&](int s, int p, int g) { return values.data() + ((s * 40 + p) * kKvHeads + g) * kHd; };

  for (KvElement elem : {KvElement::F32, KvElement::F16}) {
    const size_t esize = elem == KvElement::F32 ? 4 : 2;
    const size_t block_bytes = kBt * kKvHeads * kHd * esize;
    for (const KernelTable* k : all_tables()) {
      CpuBackend be(2, *k);
      std::vector<std::byte> kcache(block_bytes * kBlocks), vcache(block_bytes * kBlocks);
      KvLayerView view{kcache.data(), vcache.data(), block_bytes, kBt, elem, kKvHeads, kHd};
      const std::vector<std::span<const int32_t>> tables{table_a, table_b};
      // Store every position of both sequences, one batch, rows interleaved.
      std::vector<int32_t> pos, seq;
      std::vector<float> krows, vrows;
      for (int p = 0; p < 40; ++p) {
        for (int s = 0; s < 2; ++s) {
          if (p >= len[s]) continue;
          pos.push_back(p);
          seq.push_back(s);
          krows.insert(krows.end(), key(s, p, 0), key(s, p, 0) + kKvHeads * kHd);
          vrows.insert(vrows.end(), value(s, p, 0), value(s, p, 0) + kKvHeads * kHd);
        }
      }
      be.store_kv(view, krows.data(), vrows.data(), {pos, seq, tables});
      // Query a few rows at assorted positions.
      const std::vector<int32_t> qpos{0, 15, 16, 39, 19, 7};
      const std::vector<int32_t> qseq{0, 0, 0, 0, 1, 1};
      auto q = random_floats(qpos.size() * kHeads * kHd, 3);
      std::vector<float> out(q.size());
      const float scale = 1.0f / std::sqrt(static_cast<float>(kHd));
      be.attention(q.data(), kHeads, view, {qpos, qseq, tables}, scale, out.data());
      for (size_t i = 0; i < qpos.size(); ++i) {
        for (int h = 0; h < kHeads; ++h) {
          const int g = h / (kHeads / kKvHeads);
          const float* qh = q.data() + (i * kHeads + static_cast<size_t>(h)) * kHd;
          std::vector<double> w(static_cast<size_t>(qpos[i]) + 1);
          double mx = -1e300, z = 0;
          for (int p = 0; p <= qpos[i]; ++p) {
            double s = 0;
            for (int d = 0; d < kHd; ++d) {
              float kv = key(qseq[i], p, g)[d];
              if (elem == KvElement::F16) kv = tensor::fp16_to_fp32(tensor::fp32_to_fp16(kv));
              s += static_cast<double>(qh[d]) * kv;
            }
            w[static_cast<size_t>(p)] = s * scale;
            mx = std::max(mx, w[static_cast<size_t>(p)]);
          }
          for (auto& x : w) z += (x = std::exp(x - mx));
          for (int d = 0; d < kHd; ++d) {
            double expect = 0;
            for (int p = 0; p <= qpos[i]; ++p) {
              float v = value(qseq[i], p, g)[d];
              if (elem == KvElement::F16) v = tensor::fp16_to_fp32(tensor::fp32_to_fp16(v));
              expect += w[static_cast<size_t>(p)] / z * v;
            }
            ASSERT_NEAR(out[(i * kHeads + static_cast<size_t>(h)) * kHd + static_cast<size_t>(d)], expect, 1e-5)
                << k->name << " row " << i << " head " << h;
          }
        }
      }
    }
  }
}

TEST(Attention, PositionBeyondBlockTableThrows) {
  CpuBackend be(1, scalar_kernels());
  std::vector<std::byte> cache(16 * 8 * 4);
  KvLayerView view{cache.data(), cache.data(), 16 * 8 * 4, 16, KvElement::F32, 1, 8};
  const std::vector<int32_t> table{0};
  const std::vector<std::span<const int32_t>> tables{table};
  const std::vector<int32_t> pos{16}, seq{0};
  std::vector<float> q(8), out(8);
  EXPECT_THROW(be.attention(q.data(), 1, view, {pos, seq, tables}, 1.0f, out.data()), std::out_of_range);
}

TEST(Rope, NormalAndNeoxRotateTheirPairs) {
  CpuBackend be(1, scalar_kernels());
  const int hd = 8, n_rot = 8;
  const std::vector<int32_t> positions{3};
  std::vector<float> cs(n_rot);
  const std::vector<float> factors{1.0f, 1.0f, 2.0f, 8.0f};
  fill_rope_table(positions, {10000.0f, n_rot, factors}, cs.data());
  for (int i = 0; i < n_rot / 2; ++i) {
    const double angle = 3.0 * std::pow(10000.0, -2.0 * i / n_rot) / factors[static_cast<size_t>(i)];
    EXPECT_NEAR(cs[static_cast<size_t>(2 * i)], std::cos(angle), 1e-6);
    EXPECT_NEAR(cs[static_cast<size_t>(2 * i + 1)], std::sin(angle), 1e-6);
  }
  auto x = random_floats(hd, 4);
  for (bool neox : {false, true}) {
    auto y = x;
    be.rope(y.data(), 1, 1, hd, n_rot, neox, cs.data());
    for (int i = 0; i < n_rot / 2; ++i) {
      const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
      const float c = cs[static_cast<size_t>(2 * i)], s = cs[static_cast<size_t>(2 * i + 1)];
      EXPECT_NEAR(y[static_cast<size_t>(a)], x[static_cast<size_t>(a)] * c - x[static_cast<size_t>(b)] * s, 1e-6);
      EXPECT_NEAR(y[static_cast<size_t>(b)], x[static_cast<size_t>(a)] * s + x[static_cast<size_t>(b)] * c, 1e-6);
    }
  }
}

TEST(RmsNorm, ScalesRowsToUnitRmsTimesGamma) {
  CpuBackend be(1, scalar_kernels());
  const std::vector<float> x{3, 4, 0, 0, 1, 1, 1, 1};
  const std::vector<float> gamma{1, 2, 3, 4};
  std::vector<float> out(8);
  be.rmsnorm(x.data(), gamma.data(), 2, 4, 0.0f, out.data());
  // Row 0: rms = sqrt(25/4) = 2.5; row 1: rms = 1.
  EXPECT_FLOAT_EQ(out[0], 3 / 2.5f);
  EXPECT_FLOAT_EQ(out[1], 2 * 4 / 2.5f);
  EXPECT_FLOAT_EQ(out[5], 2.0f);
  EXPECT_FLOAT_EQ(out[7], 4.0f);
}

TEST(ThreadPool, ParallelForVisitsEveryIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 16, 17, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int rep = 0; rep < 3; ++rep) {
        pool.parallel_for(n, 16, [&](int64_t b, int64_t e, int) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
      }
      for (auto& h : hits) EXPECT_EQ(h.load(), 3);
    }
  }
}

}  // namespace
}  // namespace pensieve::backend::cpu
