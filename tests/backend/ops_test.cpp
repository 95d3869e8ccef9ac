// Attention over block tables, RoPE, RMSNorm and the thread pool against direct formulas.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "gguf/ggml_type.h"
#include "tensor/dequantize.h"

#include "kernel_tables.h"
#include "random_floats.h"

namespace pensieve::backend::cpu {
namespace {

using test_inputs::random_floats;

using test_inputs::all_tables;

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

// Stores 30 positions of one sequence (blocks 3 then 1) in a cache of `elem`, then attends from a few of them.
std::vector<float> store_then_attend(const KernelTable& k, KvElement elem, int heads, int kv_heads, int hd,
                                     const std::vector<float>& keys, const std::vector<float>& values,
                                     const std::vector<float>& q, const std::vector<int32_t>& qpos) {
  constexpr int kBt = 16, kLen = 30;
  const KvLayerView shape{nullptr, nullptr, 0, kBt, elem, kv_heads, hd};
  const size_t block_bytes = kBt * shape.row_bytes();
  std::vector<std::byte> kcache(block_bytes * 4), vcache(block_bytes * 4);
  const KvLayerView view{kcache.data(), vcache.data(), block_bytes, kBt, elem, kv_heads, hd};
  const std::vector<int32_t> table{3, 1};
  const std::vector<std::span<const int32_t>> tables{table};
  std::vector<int32_t> pos(kLen), seq(kLen, 0);
  for (int p = 0; p < kLen; ++p) pos[static_cast<size_t>(p)] = p;
  CpuBackend be(2, k);
  be.store_kv(view, keys.data(), values.data(), {pos, seq, tables});
  const std::vector<int32_t> qseq(qpos.size(), 0);
  std::vector<float> out(q.size());
  be.attention(q.data(), heads, view, {qpos, qseq, tables}, 1.0f / std::sqrt(static_cast<float>(hd)), out.data());
  return out;
}

// Q8_0 KV: attention equals attention over the keys and values as Q8_0 round-trips them (the reference
// quantizer and dequantizer), and stays within quantization error of the F32 cache.
TEST(Attention, Q8_0CacheMatchesF32CacheWithinQuantizationError) {
  constexpr int kHeads = 4, kKvHeads = 2, kHd = 64, kLen = 30;
  const size_t row = kKvHeads * kHd;
  const auto keys = random_floats(kLen * row, 11), values = random_floats(kLen * row, 12);
  const std::vector<int32_t> qpos{0, 15, 16, 29};
  const auto q = random_floats(qpos.size() * kHeads * kHd, 13);
  // llama.cpp's quantize_row_q8_0 per 32 elements: d = amax / 127, q = round(x * (1 / d)), d kept as fp16.
  auto round_trip = [](const std::vector<float>& x) {
    std::vector<float> y(x.size());
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0;
      for (size_t j = b; j < b + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      const float d = amax / 127.0f;
      const float d_stored = tensor::fp16_to_fp32(tensor::fp32_to_fp16(d));
      const float inverse = d > 0 ? 1.0f / d : 0.0f;
      for (size_t j = b; j < b + 32; ++j) y[j] = d_stored * std::round(x[j] * inverse);
    }
    return y;
  };
  const auto keys_q = round_trip(keys), values_q = round_trip(values);
  for (const KernelTable* k : all_tables()) {
    const auto got = store_then_attend(*k, KvElement::Q8_0, kHeads, kKvHeads, kHd, keys, values, q, qpos);
    const auto exact = store_then_attend(*k, KvElement::F32, kHeads, kKvHeads, kHd, keys_q, values_q, q, qpos);
    const auto f32 = store_then_attend(*k, KvElement::F32, kHeads, kKvHeads, kHd, keys, values, q, qpos);
    float err_exact = 0, err_f32 = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err_exact = std::max(err_exact, std::fabs(got[i] - exact[i]));
      err_f32 = std::max(err_f32, std::fabs(got[i] - f32[i]));
    }
    std::printf("[ %s ] q8_0 KV attention: max |err| vs round-tripped f32 %.2e, vs f32 %.2e\n", k->name, err_exact,
                err_f32);
    EXPECT_LE(err_exact, 1e-5f) << k->name;
    // Each element is off by at most amax/254 of its block (~0.01 for these N(0,1) rows).
    EXPECT_LE(err_f32, 0.03f) << k->name;
    EXPECT_GT(err_f32, 0.0f) << k->name << ": a q8_0 cache that is exact was not quantized";
  }
}

// Batches as prefill chunks make them: runs of consecutive positions of one sequence, interleaved with rows of
// other sequences, contexts that end mid-block. Checked against softmax(q k^T * scale) v in double over the
// keys and values as the cache holds them (read back with the reference dequantizer), and SIMD against scalar.
struct AttentionShape {
  int rep, kv_heads, hd;
};

std::vector<float> cache_row_head(const std::vector<std::byte>& cache, const KvLayerView& view, size_t block, int slot,
                                  int g) {
  const uint32_t type = static_cast<uint32_t>(view.element == KvElement::F32   ? gguf::GgmlType::F32
                                              : view.element == KvElement::F16 ? gguf::GgmlType::F16
                                                                               : gguf::GgmlType::Q8_0);
  const size_t offset = block * view.block_bytes + static_cast<size_t>(slot) * view.row_bytes() +
                        static_cast<size_t>(g) * view.head_bytes();
  std::vector<float> out(static_cast<size_t>(view.head_dim));
  tensor::dequantize(type, std::span<const std::byte>(cache).subspan(offset, view.head_bytes()), out);
  return out;
}

TEST(Attention, PrefillRunsOfOneSequenceMixedWithOthersMatchReference) {
  constexpr int kBt = 16, kBlocks = 12;
  const int len[3] = {37, 50, 21};
  const std::vector<int32_t> table_0{4, 0, 9}, table_1{2, 11, 5, 7}, table_2{8, 1};
  const std::vector<std::span<const int32_t>> tables{table_0, table_1, table_2};
  // Query rows: rounds of 5 consecutive positions of sequence 0, 1 of sequence 2, 9 of sequence 1.
  std::vector<int32_t> qpos, qseq;
  const int take[3] = {5, 9, 1};
  int next[3] = {0, 0, 0};
  while (next[0] < len[0] || next[1] < len[1] || next[2] < len[2]) {
    for (int s : {0, 2, 1}) {
      for (int k = 0; k < take[s] && next[s] < len[s]; ++k) {
        qpos.push_back(next[s]++);
        qseq.push_back(s);
      }
    }
  }
  for (const AttentionShape shape : {AttentionShape{1, 2, 64}, AttentionShape{7, 2, 128}, AttentionShape{7, 1, 64}}) {
    const int heads = shape.rep * shape.kv_heads, hd = shape.hd;
    const size_t kv_width = static_cast<size_t>(shape.kv_heads * hd);
    const auto q = random_floats(qpos.size() * static_cast<size_t>(heads * hd), 21);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (KvElement elem : {KvElement::F32, KvElement::F16, KvElement::Q8_0}) {
      const KvLayerView shape_view{nullptr, nullptr, 0, kBt, elem, shape.kv_heads, hd};
      const size_t block_bytes = kBt * shape_view.row_bytes();
      std::vector<std::byte> kcache(block_bytes * kBlocks), vcache(block_bytes * kBlocks);
      const KvLayerView view{kcache.data(), vcache.data(), block_bytes, kBt, elem, shape.kv_heads, hd};
      // Every position of every sequence, stored in one batch.
      std::vector<int32_t> pos, seq;
      for (int s = 0; s < 3; ++s) {
        for (int p = 0; p < len[s]; ++p) {
          pos.push_back(p);
          seq.push_back(s);
        }
      }
      const auto keys = random_floats(pos.size() * kv_width, 22), values = random_floats(pos.size() * kv_width, 23);
      CpuBackend(1, scalar_kernels()).store_kv(view, keys.data(), values.data(), {pos, seq, tables});

      std::vector<double> expect(q.size());
      for (size_t i = 0; i < qpos.size(); ++i) {
        const auto table = tables[static_cast<size_t>(qseq[i])];
        for (int h = 0; h < heads; ++h) {
          const int g = h / shape.rep;
          const float* qh = q.data() + (i * static_cast<size_t>(heads) + static_cast<size_t>(h)) * static_cast<size_t>(hd);
          std::vector<double> w;
          std::vector<std::vector<float>> v;
          double mx = -1e300, z = 0;
          for (int p = 0; p <= qpos[i]; ++p) {
            const size_t block = static_cast<size_t>(table[static_cast<size_t>(p / kBt)]);
            const auto kr = cache_row_head(kcache, view, block, p % kBt, g);
            v.push_back(cache_row_head(vcache, view, block, p % kBt, g));
            double s = 0;
            for (int d = 0; d < hd; ++d) s += static_cast<double>(qh[d]) * kr[static_cast<size_t>(d)];
            w.push_back(s * scale);
            mx = std::max(mx, w.back());
          }
          for (auto& x : w) z += (x = std::exp(x - mx));
          for (int d = 0; d < hd; ++d) {
            double acc = 0;
            for (size_t p = 0; p < w.size(); ++p) acc += w[p] / z * v[p][static_cast<size_t>(d)];
            expect[(i * static_cast<size_t>(heads) + static_cast<size_t>(h)) * static_cast<size_t>(hd) + static_cast<size_t>(d)] = acc;
          }
        }
      }
      std::vector<float> scalar_out;
      for (const KernelTable* k : all_tables()) {
        for (int threads : {1, 2}) {
          CpuBackend be(threads, *k);
          std::vector<float> out(q.size(), std::nanf(""));  // stale output must not leak in
          be.attention(q.data(), heads, view, {qpos, qseq, tables}, scale, out.data());
          if (scalar_out.empty()) scalar_out = out;
          double worst = 0, worst_vs_scalar = 0;
          for (size_t j = 0; j < out.size(); ++j) {
            worst = std::max(worst, std::fabs(out[j] - expect[j]));
            worst_vs_scalar = std::max(worst_vs_scalar, static_cast<double>(std::fabs(out[j] - scalar_out[j])));
          }
          EXPECT_LE(worst, 2e-5) << k->name << " threads " << threads << " rep " << shape.rep << " hd " << hd
                                 << " element " << static_cast<int>(elem);
          EXPECT_LE(worst_vs_scalar, 2e-5) << k->name << " threads " << threads << " rep " << shape.rep;
        }
      }
    }
  }
}

TEST(Attention, Q8_0CacheRefusesHeadsThatAreNotWholeBlocks) {
  CpuBackend be(1, scalar_kernels());
  std::vector<std::byte> cache(16 * 48 / 32 * 34 * 2);
  const KvLayerView view{cache.data(), cache.data(), cache.size(), 16, KvElement::Q8_0, 1, 48};
  const std::vector<int32_t> table{0};
  const std::vector<std::span<const int32_t>> tables{table};
  const std::vector<int32_t> pos{0}, seq{0};
  std::vector<float> q(48), out(48);
  EXPECT_THROW(be.attention(q.data(), 1, view, {pos, seq, tables}, 1.0f, out.data()), std::invalid_argument);
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
    StepTables step{positions, {}, {}};
    step.rope = cs;
    be.rope(y.data(), 1, hd, n_rot, neox, step);
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
