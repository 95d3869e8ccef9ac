// Recorded steps (CUDA graphs): a model decoding on a backend that records and replays its steps must give,
// bit for bit, the logits of the same model on a backend that issues every op (PENSIEVE_CUDA_GRAPHS=0): the
// same kernels run on the same inputs. The batch changes shape between steps, its block tables grow and its
// contexts cross a rounding boundary, and a wide step grows the scratch buffers midway, so a replay that read
// a stale table, position or pointer would show.
// Skipped, saying why, where no GPU can be used.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/model.h"

namespace pensieve::backend {
namespace {

const std::filesystem::path kFixtures = PENSIEVE_FIXTURES_DIR;

struct Decoder {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<model::Model> model;
  kv::KvBlockPool pool;
  std::vector<kv::BlockTable> tables;

  Decoder(std::unique_ptr<Backend> be, const std::filesystem::path& file)
      : backend(std::move(be)),
        model(model::Model::load(file, *backend)),
        pool(model->make_kv_pool(kv::KvType::F16, 64)),
        tables(2) {}

  // Runs one step: rows (sequence, token, position); returns the logits of every row.
  std::vector<float> step(const std::vector<std::array<int32_t, 3>>& rows) {
    model::Batch b;
    for (size_t s = 0; s < tables.size(); ++s) b.add_sequence({});
    for (const auto& [seq, token, pos] : rows) {
      EXPECT_TRUE(tables[static_cast<size_t>(seq)].reserve(pool, pos + 1));
    }
    for (size_t s = 0; s < tables.size(); ++s) b.block_tables[s] = tables[s].blocks();
    for (const auto& [seq, token, pos] : rows) b.add_token(token, pos, seq, true);
    std::vector<float> logits(rows.size() * static_cast<size_t>(model->config().vocab));
    model->forward(b, pool, logits);
    return logits;
  }
};

TEST(CudaGraphs, RecordedStepsGiveTheLogitsOfIssuedOps) {
  if (const std::string why = cuda_unavailable_reason(0); !why.empty()) GTEST_SKIP() << "no GPU: " << why;
  const auto file = kFixtures / "quant" / "llama3-tiny-Q4_K_M.gguf";
  setenv("PENSIEVE_CUDA_GRAPHS", "0", 1);
  Decoder plain(make_cuda_backend(0), file);
  unsetenv("PENSIEVE_CUDA_GRAPHS");
  Decoder recorded(make_cuda_backend(0), file);
  const int vocab = plain.model->config().vocab;

  // Sequence 0 starts near the 256-token rounding of contexts and crosses it; sequence 1 is short.
  const int len0 = 230, len1 = 19;
  std::vector<std::array<int32_t, 3>> prefill;
  for (int i = 0; i < len0; ++i) prefill.push_back({0, (i * 7 + 3) % vocab, i});
  for (int i = 0; i < len1; ++i) prefill.push_back({1, (i * 11 + 5) % vocab, i});
  const auto first = plain.step(prefill);
  ASSERT_EQ(recorded.step(prefill), first);

  auto argmax = [&](const std::vector<float>& logits, size_t row) {
    const auto begin = logits.begin() + static_cast<std::ptrdiff_t>(row * static_cast<size_t>(vocab));
    return static_cast<int32_t>(std::max_element(begin, begin + vocab) - begin);
  };
  int32_t next0 = argmax(first, len0 - 1), next1 = argmax(first, len0 + len1 - 1);
  int pos0 = len0, pos1 = len1;
  for (int s = 0; s < 120; ++s) {
    if (s == 60) {
      // A wider step (sequence 1 takes 30 tokens at once) grows the backend's scratch, which the recordings
      // made so far read: they must not be replayed over the freed buffers.
      std::vector<std::array<int32_t, 3>> rows{{0, next0, pos0++}};
      for (int i = 0; i < 30; ++i) rows.push_back({1, (i * 13 + 1) % vocab, pos1++});
      const auto want = plain.step(rows);
      ASSERT_EQ(recorded.step(rows), want);
      next0 = argmax(want, 0);
      next1 = argmax(want, 30);
      continue;
    }
    // Both sequences two steps in three, sequence 0 alone otherwise: two shapes, each seen again and again.
    std::vector<std::array<int32_t, 3>> rows{{0, next0, pos0}};
    const bool both = s % 3 != 0;
    if (both) rows.push_back({1, next1, pos1});
    const auto want = plain.step(rows);
    const auto got = recorded.step(rows);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "step " << s;
    next0 = argmax(want, 0);
    ++pos0;
    if (both) {
      next1 = argmax(want, 1);
      ++pos1;
    }
  }
  const DeviceInfo d = recorded.backend->device_info();
  EXPECT_GE(d.recorded_steps, 3u) << "two shapes, and a new one for each past the context rounding";
  EXPECT_GE(d.replayed_steps, 100u);
  EXPECT_EQ(plain.backend->device_info().replayed_steps, 0u);
}

}  // namespace
}  // namespace pensieve::backend
