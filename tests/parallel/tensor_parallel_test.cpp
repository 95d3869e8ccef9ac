// A model split over N ranks (each a backend of its own, the ranks talking through the communicator) against
// the same model on one rank: the logits of every position and the greedy continuations. On the CPU the ranks
// are threads of this process; with PENSIEVE_TEST_DEVICE=cuda they are GPUs (see rank_backends).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "model_fixtures.h"
#include "synth/synthesize.h"

namespace pensieve::model::testing {
namespace {

bool on_gpus() {
  const char* d = std::getenv("PENSIEVE_TEST_DEVICE");
  return d != nullptr && std::string(d).starts_with("cuda");
}

// N backends, one per rank: CPU backends of one thread each (the machine's cores are shared by the ranks), or
// GPUs. With at least N GPUs rank r is cuda:r and the ranks talk over NCCL; with fewer, ranks share GPUs
// (rank r on cuda:(r mod GPUs)) and talk through host copies: the split forward on the GPU backend is then
// tested, the NCCL transport is not (the line printed says so). Empty, with the reason in `why`, when no
// GPU can be used.
std::vector<std::unique_ptr<backend::Backend>> rank_backends(int n, std::string* why) {
  std::vector<std::unique_ptr<backend::Backend>> out;
  if (!on_gpus()) {
    for (int r = 0; r < n; ++r) out.push_back(backend::make_cpu_backend(1));
    return out;
  }
  int gpus = 0;
  while (gpus < n && backend::cuda_unavailable_reason(gpus).empty()) ++gpus;
  if (gpus == 0) {
    *why = "no GPU: " + backend::cuda_unavailable_reason(0);
    return {};
  }
  if (gpus < n && n > 1) {
    std::printf("[ %d ranks on %d GPU(s): joined through host copies, not NCCL ]\n", n, gpus);
  }
  for (int r = 0; r < n; ++r) out.push_back(backend::make_cuda_backend(r % gpus));
  return out;
}

std::unique_ptr<Model> load_over(const std::filesystem::path& path, std::vector<std::unique_ptr<backend::Backend>>& bes) {
  std::vector<backend::Backend*> ranks;
  for (auto& b : bes) ranks.push_back(b.get());
  return Model::load(path, ranks);
}

// How far N ranks may move the logits, as a share of each row's largest logit: the worst row, and the mean
// over rows. Split over N ranks, the attention output and FFN down products are summed in another order (N
// partial sums of K/N terms, then the all-reduce) and so round differently; every other value is computed by
// the same kernel over the same inputs (row splits leave each output row's sum as it was; column splits fall
// on block boundaries, where activations are quantized block by block as before).
struct Tolerance {
  double worst;
  double mean;
};
// F32 weights: only that reordering. An fp32 dot product of K terms reordered moves by about sqrt(K) x 6e-8
// relative; over these two-layer models with their large random activations it measured below 2e-6 of the
// largest logit (printed by the test). 1e-4 leaves room for other kernels' orders (AVX-512 vs AVX2, GPUs)
// while a wrong slice, a missing all-reduce or a misplaced head moves logits by whole units (ratios of 0.1+).
constexpr Tolerance kFloatWeights{1e-4, 1e-5};
// Quantized weights: the kernels quantize each activation block to int8 first, and a reordering that moves an
// activation by one float ulp can move its int8 rounding by a step (1/127 of the block's largest value), which
// the layers after it carry to the logits. One rank is as sensitive to its own kernel order: the same Q8_0
// fixtures run with the interleaved and the GGUF-order kernels differ by up to 1.4e-2 (llama3-tiny) and
// 1.6e-2 (qwen2-tiny) of the largest logit, 7e-4 and 2.8e-3 on average. The bounds sit above that, far below
// what a wrong split does.
constexpr Tolerance kQuantizedWeights{5e-2, 5e-3};

struct Comparison {
  double worst_ratio = 0;  // max |logit(N) - logit(1)| / max |logit(1)| over rows
  double mean_ratio = 0;
};

Comparison compare_prefill(Model& one, Model& many, const std::vector<std::vector<int32_t>>& prompts, Tolerance tolerance,
                           const std::string& what) {
  Comparison c;
  const int vocab = one.config().vocab;
  size_t rows = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto ref = prefill_all_logits(one, prompts[p], kv::KvType::F32);
    const auto got = prefill_all_logits(many, prompts[p], kv::KvType::F32);
    for (size_t r = 0; r < prompts[p].size(); ++r) {
      const float* a = ref.data() + r * static_cast<size_t>(vocab);
      const float* b = got.data() + r * static_cast<size_t>(vocab);
      float row_max = 0, err = 0;
      for (int i = 0; i < vocab; ++i) {
        row_max = std::max(row_max, std::fabs(a[i]));
        err = std::max(err, std::fabs(a[i] - b[i]));
      }
      EXPECT_LE(err, tolerance.worst * row_max) << what << " prompt " << p << " position " << r;
      c.worst_ratio = std::max(c.worst_ratio, static_cast<double>(err / row_max));
      c.mean_ratio += static_cast<double>(err / row_max);
      ++rows;
    }
  }
  c.mean_ratio /= static_cast<double>(std::max<size_t>(rows, 1));
  EXPECT_LE(c.mean_ratio, tolerance.mean) << what;
  std::printf("[ %s ] |logit diff| / max |logit|: worst %.2e, mean %.2e\n", what.c_str(), c.worst_ratio, c.mean_ratio);
  return c;
}

// Greedy runs of quantized weights must agree, or part where the reference's own choice was a near tie: a
// difference within the logits' tolerance can flip it (on a GPU every activation is rounded to f16 as well,
// and these random-weight models carry a last-bit change far). At the first differing token, the gap
// between the two choices in the reference's logits must be within `tolerance` of its largest logit.
void expect_same_or_near_tie(Model& one, const std::vector<int32_t>& prompt, const std::vector<int32_t>& want,
                             const std::vector<int32_t>& got, double tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  const auto diverge = std::mismatch(want.begin(), want.end(), got.begin());
  if (diverge.first == want.end()) return;
  const size_t at = static_cast<size_t>(diverge.first - want.begin());
  std::vector<int32_t> context = prompt;
  context.insert(context.end(), want.begin(), want.begin() + static_cast<std::ptrdiff_t>(at));
  const auto logits = prefill_all_logits(one, context, kv::KvType::F32);
  const int vocab = one.config().vocab;
  const float* last = logits.data() + (context.size() - 1) * static_cast<size_t>(vocab);
  float row_max = 0;
  for (int i = 0; i < vocab; ++i) row_max = std::max(row_max, std::fabs(last[i]));
  const float gap = last[want[at]] - last[got[at]];
  std::printf("[ %s ] greedy runs part at token %zu: a near tie, gap %.2e of the largest logit\n", what.c_str(), at,
              static_cast<double>(gap / row_max));
  EXPECT_LE(gap, tolerance * row_max) << what << ": greedy runs part at token " << at << " where the reference "
                                      << "was not near a tie";
}

const char* const kFixtures[] = {"llama-tiny", "llama3-tiny", "qwen3-tiny", "qwen2-tiny"};

class FixtureOverTwoRanks : public ::testing::TestWithParam<const char*> {};

TEST_P(FixtureOverTwoRanks, LogitsAndGreedyMatchOneRank) {
  const Fixture f = load_fixture(GetParam());
  for (const char* type : {"f32", "q8_0"}) {
    const auto path = fixture_dir(f.name) / (f.name + "-" + type + ".gguf");
    std::string why;
    auto ref_backends = rank_backends(1, &why);
    auto bes = rank_backends(2, &why);
    if (bes.empty()) {
      GTEST_SKIP() << why;
    }
    auto one = load_over(path, ref_backends);
    auto two = load_over(path, bes);
    ASSERT_EQ(two->tensor_parallel(), 2);
    ASSERT_EQ(two->config().vocab, f.vocab);  // qwen2-tiny: the padded 640, split 320 + 320
    const std::string what = f.name + " " + type + " over 2 ranks";
    compare_prefill(*one, *two, f.prompts, std::string(type) == "f32" ? kFloatWeights : kQuantizedWeights, what);
    for (size_t p = 0; p < f.prompts.size(); ++p) {
      const auto greedy = greedy_incremental(*two, f.prompts[p], 24, kv::KvType::F32);
      const auto want = greedy_incremental(*one, f.prompts[p], 24, kv::KvType::F32);
      if (std::string(type) == "f32") {
        EXPECT_EQ(greedy, want) << what << " prompt " << p;
      } else {
        expect_same_or_near_tie(*one, f.prompts[p], want, greedy, kQuantizedWeights.worst, what);
      }
      // The F32 file reproduces transformers' own continuation (golden_logits_test), so must its split.
      if (std::string(type) == "f32") {
        EXPECT_EQ(greedy, f.greedy[p]) << what << " prompt " << p;
      }
    }
  }
}

std::string test_name(const ::testing::TestParamInfo<const char*>& info) {
  std::string name = info.param;
  for (char& ch : name) ch = ch == '-' ? '_' : ch;
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureOverTwoRanks, ::testing::ValuesIn(kFixtures), test_name);

TEST(TensorParallel, RefusesAWorldSizeThatDoesNotDivideTheKvHeads) {
  // Every fixture has 4 heads over 2 KV heads: 4 ranks would need a KV head each.
  std::string why;
  auto bes = rank_backends(4, &why);
  if (bes.empty()) {
    GTEST_SKIP() << why;
  }
  try {
    load_over(fixture_dir("llama-tiny") / "llama-tiny-f32.gguf", bes);
    FAIL() << "loaded over 4 ranks";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "--tensor-parallel 4 does not divide the model's 2 KV heads");
  }
}

// A synthesized model shaped so that 2, 4 and 8 ranks divide everything, in Q4_K_M: attn_output and ffn_down
// (Q4_K / Q6_K, 256-element blocks) are split by columns, so q_dim and the FFN width are 8 x 256; 16 heads over
// 8 KV heads keep grouped-query attention at every split (2 heads per KV head).
std::filesystem::path synth_model(const std::string& name, uint32_t heads, uint32_t kv_heads, uint32_t head_dim, uint32_t ffn) {
  const auto dir = std::filesystem::temp_directory_path() / "pensieve-test-parallel";
  std::filesystem::create_directories(dir);
  const auto out = dir / (name + ".gguf");
  synth::ShapeOverrides o;
  o.layers = 2, o.hidden = 256, o.heads = heads, o.kv_heads = kv_heads, o.head_dim = head_dim, o.ffn = ffn;
  o.context = 1024;
  synth::SynthOptions options;
  options.shape = synth::apply_overrides(synth::find_preset("demo"), o);  // tied: a replicated lookup, a split output
  options.type = synth::OutputType::Q4_K_M;
  options.seed = 17;
  const auto tokenizer =
      synth::import_tokenizer(std::filesystem::path(PENSIEVE_FIXTURES_DIR) / "models/llama-tiny/llama-tiny-f32.gguf", options.shape);
  synth::synthesize(options, tokenizer, out);
  return out;
}

const std::filesystem::path& divisible_model() {
  static const std::filesystem::path path = synth_model("tp-q4_k_m", 16, 8, 128, 2048);
  return path;
}

class SynthOverRanks : public ::testing::TestWithParam<int> {};

TEST_P(SynthOverRanks, LogitsAndGreedyMatchOneRank) {
  const int n = GetParam();
  std::string why;
  auto ref_backends = rank_backends(1, &why);
  auto bes = rank_backends(n, &why);
  if (bes.empty()) {
    GTEST_SKIP() << why;
  }
  auto one = load_over(divisible_model(), ref_backends);
  auto many = load_over(divisible_model(), bes);
  const std::vector<std::vector<int32_t>> prompts = {{1, 17, 99, 300, 42, 7, 250, 3, 64, 128, 500, 11, 2, 77, 31, 400, 9, 19}};
  compare_prefill(*one, *many, prompts, kQuantizedWeights, "synth Q4_K_M over " + std::to_string(n) + " ranks");
  EXPECT_EQ(greedy_incremental(*many, prompts[0], 12, kv::KvType::F32), greedy_incremental(*one, prompts[0], 12, kv::KvType::F32));
}

INSTANTIATE_TEST_SUITE_P(Ranks, SynthOverRanks, ::testing::Values(2, 4, 8));

TEST(TensorParallel, RefusesASplitThatCutsQuantBlocks) {
  // q_dim 4 x 64 = 256 is one Q4_K block per row of attn_output: two ranks would each take half a block.
  const auto path = synth_model("tp-q4_k_m-narrow", 4, 2, 64, 512);
  std::string why;
  auto bes = rank_backends(2, &why);
  if (bes.empty()) {
    GTEST_SKIP() << why;
  }
  try {
    load_over(path, bes);
    FAIL() << "loaded a split through quant blocks";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--tensor-parallel 2: blk.0.attn_output.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("128 columns"), std::string::npos) << msg;
  }
}

TEST(TensorParallel, TopLogitsOfSlicesMergeIntoTheWholeRowsHeads) {
  const int vocab = 300;
  std::vector<float> row(vocab);
  for (int i = 0; i < vocab; ++i) row[static_cast<size_t>(i)] = static_cast<float>((i * 37) % 101) * 0.25f;  // many ties
  backend::TopLogits whole{};
  backend::compute_top_logits(row, whole);
  const std::vector<int64_t> begins = {0, 100, 201};  // uneven slices, as a vocabulary that does not divide
  std::vector<backend::TopLogits> parts(3);
  for (size_t r = 0; r < 3; ++r) {
    const int64_t end = r + 1 < begins.size() ? begins[r + 1] : vocab;
    backend::compute_top_logits(std::span<const float>(row).subspan(static_cast<size_t>(begins[r]), static_cast<size_t>(end - begins[r])),
                                parts[r]);
  }
  backend::TopLogits merged{};
  merge_top_logits(parts, begins, 1, vocab, std::span(&merged, 1));
  ASSERT_EQ(merged.count, whole.count);
  for (int i = 0; i < whole.count; ++i) {
    EXPECT_EQ(merged.ids[i], whole.ids[i]) << i;
    EXPECT_EQ(merged.logits[i], whole.logits[i]) << i;
  }
  EXPECT_NEAR(merged.log_sum_exp, whole.log_sum_exp, 1e-5 * std::fabs(whole.log_sum_exp));
}

// The engine's other read: the heads of a split model's rows against one rank's.
TEST(TensorParallel, TopLogitsOfASplitModelMatchOneRank) {
  std::string why;
  auto ref_backends = rank_backends(1, &why);
  auto bes = rank_backends(2, &why);
  if (bes.empty()) {
    GTEST_SKIP() << why;
  }
  const auto path = fixture_dir("qwen2-tiny") / "qwen2-tiny-f32.gguf";
  auto one = load_over(path, ref_backends);
  auto two = load_over(path, bes);
  const std::vector<int32_t> prompt = load_fixture("qwen2-tiny").prompts[1];
  std::vector<backend::TopLogits> heads[2];
  Model* models[] = {one.get(), two.get()};
  for (int m = 0; m < 2; ++m) {
    auto pool = models[m]->make_kv_pool(kv::KvType::F32, 4);
    kv::BlockTable table;
    ASSERT_TRUE(table.reserve(pool, static_cast<int>(prompt.size())));
    Batch b;
    const int s = b.add_sequence(table.blocks());
    for (size_t i = 0; i < prompt.size(); ++i) b.add_token(prompt[i], static_cast<int32_t>(i), s, i % 5 == 0);
    models[m]->run(b, pool);
    heads[m].resize(b.logit_rows.size());
    models[m]->read_top_logits(heads[m]);
  }
  for (size_t r = 0; r < heads[0].size(); ++r) {
    ASSERT_EQ(heads[1][r].count, heads[0][r].count);
    EXPECT_EQ(heads[1][r].ids[0], heads[0][r].ids[0]) << "row " << r;
    for (int i = 0; i < heads[0][r].count; ++i) {
      EXPECT_NEAR(heads[1][r].logits[i], heads[0][r].logits[i], kFloatWeights.worst * std::fabs(heads[0][r].logits[0]) + 1e-6) << r;
    }
    EXPECT_NEAR(heads[1][r].log_sum_exp, heads[0][r].log_sum_exp, kFloatWeights.worst * std::fabs(heads[0][r].log_sum_exp) + 1e-6);
  }
}

}  // namespace
}  // namespace pensieve::model::testing
