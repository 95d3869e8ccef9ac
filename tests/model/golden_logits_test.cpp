// The engine against HF transformers goldens for every fixture model (independent reference).
#include <gtest/gtest.h>

#include <cstdio>
#include <stdexcept>

#include "model_fixtures.h"

namespace pensieve::model::testing {
namespace {

const char* const kModels[] = {"llama-tiny", "llama3-tiny", "qwen3-tiny", "qwen2-tiny"};

class GoldenModel : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenModel, F32LogitsMatchTransformersAtEveryPosition) {
  const Fixture f = load_fixture(GetParam());
  auto m = Model::load(fixture_dir(f.name) / (f.name + "-f32.gguf"), test_backend());
  ASSERT_EQ(m->config().vocab, f.vocab);
  for (size_t p = 0; p < f.prompts.size(); ++p) {
    const auto got = prefill_all_logits(*m, f.prompts[p], kv::KvType::F32);
    double worst_ratio = 0;
    for (size_t r = 0; r < f.prompts[p].size(); ++r) {
      const float* g = f.logits[p].data() + r * static_cast<size_t>(f.vocab);
      const float* o = got.data() + r * static_cast<size_t>(f.vocab);
      float row_max = 0, err = 0;
      for (int i = 0; i < f.vocab; ++i) {
        row_max = std::max(row_max, std::fabs(g[i]));
        err = std::max(err, std::fabs(g[i] - o[i]));
      }
      ASSERT_LE(err, 1e-3f * row_max) << f.name << " prompt " << p << " position " << r;
      worst_ratio = std::max(worst_ratio, static_cast<double>(err / row_max));
    }
    std::printf("[ %s ] prompt %zu: max |err| / max |logit| = %.2e\n", f.name.c_str(), p, worst_ratio);
  }
}

TEST_P(GoldenModel, F32GreedyContinuationIsIdentical) {
  const Fixture f = load_fixture(GetParam());
  auto m = Model::load(fixture_dir(f.name) / (f.name + "-f32.gguf"), test_backend());
  for (size_t p = 0; p < f.prompts.size(); ++p) {
    EXPECT_EQ(greedy_incremental(*m, f.prompts[p], 24, kv::KvType::F32), f.greedy[p]) << f.name << " prompt " << p;
  }
}

struct Agreement {
  double top1 = 0;
  double mean_kl = 0;
};

Agreement agreement(Model& m, const Fixture& f, kv::KvType type) {
  size_t rows = 0, same = 0;
  double kl = 0;
  for (size_t p = 0; p < f.prompts.size(); ++p) {
    const auto got = prefill_all_logits(m, f.prompts[p], type);
    for (size_t r = 0; r < f.prompts[p].size(); ++r) {
      const float* g = f.logits[p].data() + r * static_cast<size_t>(f.vocab);
      const float* o = got.data() + r * static_cast<size_t>(f.vocab);
      same += argmax(g, f.vocab) == argmax(o, f.vocab);
      kl += kl_divergence(g, o, f.vocab);
      ++rows;
    }
  }
  return {static_cast<double>(same) / static_cast<double>(rows), kl / static_cast<double>(rows)};
}

// A weight file of a fixture model (by suffix) and the agreement with the goldens it must reach.
struct Case {
  const char* suffix;
  double min_top1;
  double max_kl;
};

// Reduced-precision files cannot match exactly; they must still agree closely with the fp32 reference.
// These random-weight models are unusually sensitive (weights drawn with std 0.2, so logits are large):
// llama3-tiny's Q8_0 file reaches only ~0.87 top-1 / KL 0.03 even with exact float math on its dequantized
// weights, and ~0.83 / 0.05 once activations are quantized to int8 as the fast path does. The bounds sit
// just outside what was measured, so a real regression (a wrong block layout, a lost scale) still fails.
TEST_P(GoldenModel, ReducedPrecisionFilesAgreeWithGoldens) {
  const Fixture f = load_fixture(GetParam());
  for (const Case c : {Case{"f16", 0.97, 1e-3}, Case{"bf16", 0.9, 1e-2}, Case{"q8_0", 0.8, 0.08}}) {
    auto m = Model::load(fixture_dir(f.name) / (f.name + "-" + c.suffix + ".gguf"), test_backend());
    for (kv::KvType type : {kv::KvType::F32, kv::KvType::F16}) {
      const Agreement a = agreement(*m, f, type);
      const char* kv_name = type == kv::KvType::F32 ? "f32" : "f16";
      std::printf("[ %s-%s kv=%s ] top-1 agreement %.4f, mean KL %.2e\n", f.name.c_str(), c.suffix, kv_name, a.top1,
                  a.mean_kl);
      EXPECT_GE(a.top1, c.min_top1) << c.suffix << " kv " << kv_name;
      EXPECT_LE(a.mean_kl, c.max_kl) << c.suffix << " kv " << kv_name;
    }
    std::vector<int32_t> cont = greedy_incremental(*m, f.prompts[0], 24, kv::KvType::F16);
    size_t same = 0;
    for (size_t i = 0; i < cont.size(); ++i) same += cont[i] == f.greedy[0][i];
    std::printf("[ %s-%s ] greedy prompt 0: %zu/24 tokens equal the reference\n", f.name.c_str(), c.suffix, same);
  }
}

// The default F16 cache must not move the F32 model away from the goldens.
TEST_P(GoldenModel, F16CacheStaysCloseToGoldens) {
  const Fixture f = load_fixture(GetParam());
  auto m = Model::load(fixture_dir(f.name) / (f.name + "-f32.gguf"), test_backend());
  const Agreement a = agreement(*m, f, kv::KvType::F16);
  std::printf("[ %s-f32 kv=f16 ] top-1 agreement %.4f, mean KL %.2e\n", f.name.c_str(), a.top1, a.mean_kl);
  EXPECT_GE(a.top1, 0.97);
  EXPECT_LE(a.mean_kl, 1e-4);
}

// The q8_0 cache (an option, about half the bytes of f16) must keep the model close to the goldens; a model
// whose head size is not a multiple of 32 must be refused rather than run with blocks straddling heads.
// Measured (llama-tiny, llama3-tiny): f32 weights 0.947 / 0.942 top-1, mean KL 2.1e-3 / 7.4e-3; q8_0 weights
// 0.900 / 0.837, KL 1.6e-2 / 5.5e-2 (with an f16 cache 0.905 / 0.842, 1.4e-2 / 4.9e-2), so the q8_0 file keeps
// its f16-cache bounds above. A cache off by half a step per value (as truncating instead of rounding would
// be) measured 0.937 / 0.900, KL 4.9e-3 / 1.6e-2 on f32 weights: outside the f32 bounds. The exact check of
// the quantized values is the backend's ops test.
TEST_P(GoldenModel, Q8_0CacheStaysCloseToGoldens) {
  const Fixture f = load_fixture(GetParam());
  for (const Case c : {Case{"f32", 0.92, 1e-2}, Case{"q8_0", 0.8, 0.08}}) {
    auto m = Model::load(fixture_dir(f.name) / (f.name + "-" + c.suffix + ".gguf"), test_backend());
    if (m->config().head_dim % 32 != 0) {
      EXPECT_THROW(m->make_kv_pool(kv::KvType::Q8_0, 4), std::invalid_argument);
      std::printf("[ %s-%s kv=q8_0 ] refused: head_dim %d\n", f.name.c_str(), c.suffix, m->config().head_dim);
      continue;
    }
    const Agreement a = agreement(*m, f, kv::KvType::Q8_0);
    std::vector<int32_t> cont = greedy_incremental(*m, f.prompts[0], 24, kv::KvType::Q8_0);
    size_t same = 0;
    for (size_t i = 0; i < cont.size(); ++i) same += cont[i] == f.greedy[0][i];
    std::printf("[ %s-%s kv=q8_0 ] top-1 agreement %.4f, mean KL %.2e, greedy prompt 0: %zu/24\n", f.name.c_str(),
                c.suffix, a.top1, a.mean_kl, same);
    EXPECT_GE(a.top1, c.min_top1) << c.suffix;
    EXPECT_LE(a.mean_kl, c.max_kl) << c.suffix;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenModel, ::testing::ValuesIn(kModels),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) {
                             if (ch == '-') ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace pensieve::model::testing
