// `pensieve synth` and scripts/make-default-model.sh, end to end: write a model, read it back with inspect.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "run_binary.h"

namespace pensieve::cli_test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kFixtures = PENSIEVE_FIXTURES_DIR;

json inspect(const fs::path& file) {
  const RunResult r = run({"inspect", file.string(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

void expect_demo_model(const json& j) {
  EXPECT_EQ(j.at("architecture"), "llama");
  const json& md = j.at("metadata");
  // The demo shape: 4 blocks of width 256, 8 heads over 4 kv heads, ffn 768.
  EXPECT_EQ(md.at("llama.block_count"), 4);
  EXPECT_EQ(md.at("llama.embedding_length"), 256);
  EXPECT_EQ(md.at("llama.attention.head_count"), 8);
  EXPECT_EQ(md.at("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(md.at("llama.feed_forward_length"), 768);
  EXPECT_EQ(md.at("general.file_type"), 7);  // Q8_0
  EXPECT_EQ(md.at("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(md.at("tokenizer.ggml.bos_token_id"), 128000);
  EXPECT_EQ(j.at("tokenizer").at("vocab_size"), 128256);
  EXPECT_EQ(j.at("tokenizer").at("chat_template"), true);
  // token_embd (tied), output_norm, 9 per block.
  EXPECT_EQ(j.at("tensors").size(), 2u + 4u * 9u);
}

TEST(Synth, DemoPresetWritesAModelInspectReadsBack) {
  const fs::path out = scratch("demo.gguf");
  const RunResult r = run({"synth", "--preset", "demo", "--vocab-from",
                           (kFixtures / "tokenizers/llama3/tokenizer.json").string(), "--type", "Q8_0", "-o",
                           out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_demo_model(inspect(out));
  const RunResult values = run({"inspect", out.string(), "--tensor", "blk.0.attn_q.weight", "--json"});
  ASSERT_EQ(values.exit_code, 0) << values.err;
  const json v = json::parse(values.out);
  const double n = 256.0 * 256.0;
  EXPECT_NEAR(std::sqrt(v.at("sum_sq").get<double>() / n), 0.02, 0.002);
  fs::remove(out);
}

TEST(Synth, ShapeFlagsOverrideThePreset) {
  const fs::path out = scratch("small.gguf");
  const RunResult r = run({"synth", "--preset", "qwen3-0.6b", "--layers", "2", "--hidden", "256", "--ffn", "512",
                           "--vocab-from", (kFixtures / "models/qwen3-tiny/qwen3-tiny-f32.gguf").string(), "--type",
                           "F16", "-o", out.string(), "--seed", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = inspect(out);
  EXPECT_EQ(j.at("architecture"), "qwen3");
  EXPECT_EQ(j.at("metadata").at("qwen3.block_count"), 2);
  EXPECT_EQ(j.at("metadata").at("qwen3.embedding_length"), 256);
  EXPECT_EQ(j.at("metadata").at("qwen3.attention.key_length"), 128);  // the preset's explicit head_dim stays
  EXPECT_EQ(j.at("metadata").at("general.file_type"), 1);
  EXPECT_EQ(j.at("tokenizer").at("vocab_size"), 512);
  fs::remove(out);
}

TEST(Synth, BadArgumentsAreOneLineErrors) {
  const std::string vocab = (kFixtures / "models/llama-tiny/llama-tiny-f32.gguf").string();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"synth", "--preset", "nope", "--vocab-from", vocab, "-o", scratch("x.gguf").string()},
           {"synth", "--preset", "demo", "--vocab-from", vocab, "--type", "Q3_K", "-o", scratch("x.gguf").string()},
           {"synth", "--preset", "demo", "--vocab-from", "/no/such/tokenizer.json", "-o", scratch("x.gguf").string()},
           {"synth", "--preset", "demo", "--kv-heads", "3", "--vocab-from", vocab, "-o", scratch("x.gguf").string()}}) {
    const RunResult r = run(args);
    EXPECT_NE(r.exit_code, 0) << args[2];
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_FALSE(fs::exists(scratch("x.gguf")));
  }
}

TEST(MakeDefaultModel, WritesTheDemoModelAndSaysItIsNoise) {
  const fs::path out = scratch("models/demo.gguf");
  const RunResult r = run({fs::path(PENSIEVE_SOURCE_DIR) / "scripts/make-default-model.sh", PENSIEVE_BIN, out.string()},
                          "bash");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("random"), std::string::npos) << r.out;
  expect_demo_model(inspect(out));
  fs::remove_all(out.parent_path());
}

TEST(MakeDefaultModel, RefusesWithoutABinary) {
  const RunResult r = run({fs::path(PENSIEVE_SOURCE_DIR) / "scripts/make-default-model.sh", "/no/pensieve",
                           scratch("never.gguf").string()},
                          "bash");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

}  // namespace
}  // namespace pensieve::cli_test
