// Batch invariance and cache consistency: the same sequence gives the same logits however it is batched,
// and decoding with the KV cache gives what recomputing the whole sequence gives.
#include <exception>

#include <gtest/gtest.h>

#include "model_fixtures.h"

namespace pensieve::model::testing {
namespace {

void expect_rows_close(const float* a, const float* b, int rows, int vocab, float rel_tol, const std::string& what) {
  for (int r = 0; r < rows; ++r) {
    float row_max = 0, err = 0;
    for (int i = 0; i < vocab; ++i) {
      const size_t k = static_cast<size_t>(r) * static_cast<size_t>(vocab) + static_cast<size_t>(i);
      row_max = std::max(row_max, std::fabs(a[k]));
      err = std::max(err, std::fabs(a[k] - b[k]));
    }
    ASSERT_LE(err, rel_tol * row_max) << what << " row " << r;
  }
}

// How far a sequence's logits may move with its company. The CPU computes each row the same way whatever the
// batch. A GPU rounds activations to f16 at every matrix product and sums in a different order for small and
// large batches (op tests bound that difference at ~1e-6 of sum |w x|); a last-bit difference can carry a value
// across an f16 rounding boundary (a 2^-11 relative step), and these random-weight models amplify such steps
// layer by layer: measured up to 3.2e-3 of the row's largest logit on an H200. Cross-row mistakes (a row
// reading another's cache or activations) move logits by whole units, far outside either bound.
float batch_tolerance() { return test_backend().host_memory() ? 1e-5f : 1e-2f; }

class Batching : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {
 protected:
  std::string model_name() const { return std::get<0>(GetParam()); }
  std::filesystem::path file() const {
    return fixture_dir(model_name()) / (model_name() + "-" + std::get<1>(GetParam()) + ".gguf");
  }
};

// Every prompt in one batch, rows interleaved, must give each prompt's logits run alone (same KV type).
void expect_batch_equals_alone(Model& m, const Fixture& f, kv::KvType type) {
  const int vocab = m.config().vocab;
  auto pool = m.make_kv_pool(type, 32);
  std::vector<kv::BlockTable> tables(f.prompts.size());
  Batch b;
  size_t total = 0;
  for (size_t p = 0; p < f.prompts.size(); ++p) {
    ASSERT_TRUE(tables[p].reserve(pool, static_cast<int>(f.prompts[p].size())));
    b.add_sequence(tables[p].blocks());
    total += f.prompts[p].size();
  }
  // Interleave the sequences' rows, so no sequence occupies a contiguous range of the batch.
  std::vector<std::vector<size_t>> row_of(f.prompts.size());
  for (size_t i = 0; b.size() < static_cast<int>(total); ++i) {
    for (size_t p = 0; p < f.prompts.size(); ++p) {
      if (i < f.prompts[p].size()) {
        row_of[p].push_back(static_cast<size_t>(b.size()));
        b.add_token(f.prompts[p][i], static_cast<int32_t>(i), static_cast<int>(p), true);
      }
    }
  }
  std::vector<float> together(total * static_cast<size_t>(vocab));
  m.forward(b, pool, together);

  for (size_t p = 0; p < f.prompts.size(); ++p) {
    const auto alone = prefill_all_logits(m, f.prompts[p], type);
    std::vector<float> mine;
    for (size_t r : row_of[p]) {
      mine.insert(mine.end(), together.begin() + static_cast<std::ptrdiff_t>(r * static_cast<size_t>(vocab)),
                  together.begin() + static_cast<std::ptrdiff_t>((r + 1) * static_cast<size_t>(vocab)));
    }
    expect_rows_close(mine.data(), alone.data(), static_cast<int>(f.prompts[p].size()), vocab, batch_tolerance(),
                      std::string("kv ") + kv::kv_type_name(type) + " prompt " + std::to_string(p));
  }
}

TEST_P(Batching, AllPromptsInOneBatchEqualEachAlone) {
  const Fixture f = load_fixture(model_name());
  auto m = Model::load(file(), test_backend());
  expect_batch_equals_alone(*m, f, kv::KvType::F16);
}

// Q8_0 quantizes each token's row on its own, so batching must not change its logits either. (Models whose
// head size is not a multiple of 32 cannot use it: for them the pool must be refused.)
TEST_P(Batching, AllPromptsInOneBatchEqualEachAloneWithQ8_0Cache) {
  const Fixture f = load_fixture(model_name());
  auto m = Model::load(file(), test_backend());
  if (m->config().head_dim % 32 != 0) {
    EXPECT_THROW((void)m->make_kv_pool(kv::KvType::Q8_0, 16), std::exception) << "head_dim " << m->config().head_dim;
    return;
  }
  expect_batch_equals_alone(*m, f, kv::KvType::Q8_0);
}

TEST_P(Batching, PrefillThenDecodeEqualsFullRecompute) {
  const Fixture f = load_fixture(model_name());
  auto m = Model::load(file(), test_backend());
  const int vocab = m->config().vocab;
  const std::vector<int32_t>& prompt = f.prompts[2];  // 150 tokens
  const std::vector<int32_t>& cont = f.greedy[2];     // 24 more
  std::vector<int32_t> full = prompt;
  full.insert(full.end(), cont.begin(), cont.end());
  const auto recomputed = prefill_all_logits(*m, full, kv::KvType::F32);

  auto pool = m->make_kv_pool(kv::KvType::F32, 16);
  kv::BlockTable table;
  ASSERT_TRUE(table.reserve(pool, static_cast<int>(full.size())));
  Batch b;
  int s = b.add_sequence(table.blocks());
  for (size_t i = 0; i < prompt.size(); ++i) b.add_token(prompt[i], static_cast<int32_t>(i), s, i + 1 == prompt.size());
  std::vector<float> step(static_cast<size_t>(vocab));
  std::vector<float> incremental;
  m->forward(b, pool, step);
  incremental.insert(incremental.end(), step.begin(), step.end());
  for (size_t i = 0; i + 1 < cont.size(); ++i) {
    b.clear();
    s = b.add_sequence(table.blocks());
    b.add_token(cont[i], static_cast<int32_t>(prompt.size() + i), s, true);
    m->forward(b, pool, step);
    incremental.insert(incremental.end(), step.begin(), step.end());
  }
  const float* expected = recomputed.data() + (prompt.size() - 1) * static_cast<size_t>(vocab);
  expect_rows_close(incremental.data(), expected, static_cast<int>(cont.size()), vocab, batch_tolerance(), "decode step");
}

// Three sequences decoding together, every step one batch, must produce each sequence's own greedy run
// (the goldens for f32 weights; for quantized weights, what the sequence produces when run alone).
TEST_P(Batching, BatchedGreedyDecodeMatchesGoldens) {
  const Fixture f = load_fixture(model_name());
  auto m = Model::load(file(), test_backend());
  const int vocab = m->config().vocab;
  const size_t n_seq = f.prompts.size();
  auto pool = m->make_kv_pool(kv::KvType::F32, 32);
  std::vector<kv::BlockTable> tables(n_seq);
  Batch b;
  for (size_t p = 0; p < n_seq; ++p) {
    ASSERT_TRUE(tables[p].reserve(pool, static_cast<int>(f.prompts[p].size()) + 24));
    b.add_sequence(tables[p].blocks());
    for (size_t i = 0; i < f.prompts[p].size(); ++i) {
      b.add_token(f.prompts[p][i], static_cast<int32_t>(i), static_cast<int>(p), i + 1 == f.prompts[p].size());
    }
  }
  std::vector<float> logits(n_seq * static_cast<size_t>(vocab));
  m->forward(b, pool, logits);
  std::vector<std::vector<int32_t>> generated(n_seq);
  for (int step = 0; step < 24; ++step) {
    b.clear();
    for (size_t p = 0; p < n_seq; ++p) {
      const int32_t next = argmax(logits.data() + p * static_cast<size_t>(vocab), vocab);
      generated[p].push_back(next);
      b.add_sequence(tables[p].blocks());
      b.add_token(next, static_cast<int32_t>(f.prompts[p].size()) + step, static_cast<int>(p), true);
    }
    m->forward(b, pool, logits);
  }
  const bool exact = std::string(std::get<1>(GetParam())) == "f32";
  for (size_t p = 0; p < n_seq; ++p) {
    const auto expected = exact ? f.greedy[p] : greedy_incremental(*m, f.prompts[p], 24, kv::KvType::F32);
    EXPECT_EQ(generated[p], expected) << "prompt " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Batching,
                         ::testing::Combine(::testing::Values("llama-tiny", "llama3-tiny", "qwen3-tiny", "qwen2-tiny"),
                                            ::testing::Values("f32", "q8_0")),
                         [](const auto& info) {
                           std::string n = std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                           for (char& ch : n) {
                             if (ch == '-') ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace pensieve::model::testing
