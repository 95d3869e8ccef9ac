// `pensieve inspect` on every fixture GGUF: hyper-parameters against each model's HF config.json, dequantized
// values against gguf-py's goldens, and one-line errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "gguf/gguf_writer.h"
#include "run_binary.h"

namespace pensieve::cli_test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kFixtures = PENSIEVE_FIXTURES_DIR;

json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) ADD_FAILURE() << "missing fixture " << p;
  return json::parse(in);
}

json inspect_json(const std::vector<std::string>& args) {
  const RunResult r = run(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  try {
    return json::parse(r.out);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "not one JSON object: " << e.what() << "\n" << r.out.substr(0, 500);
    return json::object();
  }
}

std::vector<fs::path> fixture_models() {
  std::vector<fs::path> files;
  for (const auto& dir : fs::directory_iterator(kFixtures / "models")) {
    for (const auto& f : fs::directory_iterator(dir.path())) {
      if (f.path().extension() == ".gguf") files.push_back(f.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Inspect, EveryFixtureModelShowsItsConfigHyperParameters) {
  const auto files = fixture_models();
  ASSERT_EQ(files.size(), 16u) << "expected 4 fixture models x 4 types";
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    const json config = read_json(file.parent_path() / "config.json");
    const json j = inspect_json({"inspect", file.string(), "--json"});
    const std::string arch = j.at("architecture");
    EXPECT_EQ(arch, config["model_type"].get<std::string>());
    const json& md = j.at("metadata");
    EXPECT_EQ(md.at(arch + ".embedding_length"), config["hidden_size"]);
    EXPECT_EQ(md.at(arch + ".block_count"), config["num_hidden_layers"]);
    EXPECT_EQ(md.at(arch + ".attention.head_count"), config["num_attention_heads"]);
    EXPECT_EQ(md.at(arch + ".attention.head_count_kv"), config["num_key_value_heads"]);
    EXPECT_EQ(md.at(arch + ".feed_forward_length"), config["intermediate_size"]);
    EXPECT_EQ(md.at(arch + ".context_length"), config["max_position_embeddings"]);
    const json rope = config.contains("rope_parameters") ? config["rope_parameters"] : config;
    EXPECT_DOUBLE_EQ(md.at(arch + ".rope.freq_base").get<double>(), rope["rope_theta"].get<double>());
    // Stored as float32 in the file.
    EXPECT_NEAR(md.at(arch + ".attention.layer_norm_rms_epsilon").get<double>(), config["rms_norm_eps"].get<double>(),
                1e-12);
    if (arch == "qwen3") {
      EXPECT_EQ(md.at("qwen3.attention.key_length"), config["head_dim"]);
    }
    // The same numbers in the summary object.
    const json& hp = j.at("hyperparameters");
    EXPECT_EQ(hp.at("embedding_length"), config["hidden_size"]);
    EXPECT_EQ(hp.at("block_count"), config["num_hidden_layers"]);
    EXPECT_EQ(j.at("tokenizer").at("vocab_size"), config["vocab_size"]);
    EXPECT_EQ(j.at("tokenizer").at("model"), "gpt2");
    // Long arrays are summarised, short ones inline.
    EXPECT_EQ(md.at("tokenizer.ggml.tokens"), (json{{"type", "string"}, {"length", config["vocab_size"]}}));
    // Tensors: bytes add up to weight_bytes.
    uint64_t total = 0;
    for (const auto& t : j.at("tensors")) total += t.at("bytes").get<uint64_t>();
    EXPECT_EQ(total, j.at("weight_bytes").get<uint64_t>());
    EXPECT_GT(total, 0u);
  }
}

TEST(Inspect, HumanOutputNamesTheEssentials) {
  const RunResult r = run({"inspect", (kFixtures / "models/qwen3-tiny/qwen3-tiny-q8_0.gguf").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* needle : {"architecture: qwen3", "embedding_length", "head_count_kv", "rope.freq_base",
                             "tokenizer: gpt2 (pre: qwen2), 512 tokens", "blk.1.attn_q_norm.weight", "Q8_0",
                             "weight bytes:"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }
}

class TensorValues : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorValues, MatchGgufPyGoldens) {
  const std::string type = GetParam();
  const fs::path gguf = kFixtures / "quant" / ("llama3-tiny-" + type + ".gguf");
  const json golden = read_json(kFixtures / "quant" / ("llama3-tiny-" + type + ".json"));
  int checked = 0;
  for (const auto& t : golden.at("tensors")) {
    if (t.at("shape").size() < 2) continue;  // the quantized ones are the point
    if (++checked > 3) break;
    SCOPED_TRACE(t.at("name").get<std::string>());
    const json j = inspect_json({"inspect", gguf.string(), "--tensor", t.at("name"), "--values", "64", "--json"});
    EXPECT_EQ(j.at("type"), t.at("type"));
    EXPECT_EQ(j.at("shape"), t.at("shape"));
    const json& want = t.at("first_values");
    ASSERT_EQ(j.at("values").size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(j["values"][i].get<double>(), want[i].get<double>(), 1e-6) << i;
    const double sum = t.at("sum"), sum_sq = t.at("sum_sq");
    EXPECT_NEAR(j.at("sum").get<double>(), sum, 1e-6 * std::max(1.0, std::abs(sum)));
    EXPECT_NEAR(j.at("sum_sq").get<double>(), sum_sq, 1e-9 * sum_sq);
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Quant, TensorValues, ::testing::Values("Q4_K_M", "Q8_0", "Q4_0", "Q6_K", "IQ4_XS"));

TEST(Inspect, HumanTensorValues) {
  const RunResult r = run({"inspect", (kFixtures / "models/llama-tiny/llama-tiny-f32.gguf").string(), "--tensor",
                           "blk.0.attn_norm.weight", "--values", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("first 4 values:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sum_sq:"), std::string::npos) << r.out;
}

void expect_one_line_error(const RunResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line:\n" << r.err;
  EXPECT_EQ(r.err.rfind("pensieve: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(InspectErrors, MissingFile) {
  expect_one_line_error(run({"inspect", "/no/such/model.gguf"}), "model.gguf");
}

TEST(InspectErrors, CorruptFile) {
  const fs::path bad = scratch("corrupt.gguf");
  {
    std::ofstream out(bad, std::ios::binary);
    out << "GGUF\x03\0\0\0garbage that is not a GGUF header at all";
  }
  expect_one_line_error(run({"inspect", bad.string()}), "corrupt.gguf");
  expect_one_line_error(run({"inspect", bad.string(), "--json"}), "corrupt.gguf");
  fs::remove(bad);
}

TEST(InspectErrors, UnknownTensor) {
  expect_one_line_error(run({"inspect", (kFixtures / "models/llama-tiny/llama-tiny-f32.gguf").string(), "--tensor",
                             "blk.99.nothing.weight"}),
                        "blk.99.nothing.weight");
}

TEST(InspectErrors, UnsupportedTensorTypeIsListedButNotRead) {
  const fs::path file = scratch("iq2.gguf");
  gguf::GgufWriter writer;
  writer.set_string("general.architecture", "llama");
  writer.add_tensor("odd.weight", gguf::GgmlType::IQ2_XXS, {256, 2}, [](std::span<std::byte> b) {
    std::fill(b.begin(), b.end(), std::byte{0});
  });
  writer.write(file);
  const RunResult listed = run({"inspect", file.string()});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("IQ2_XXS"), std::string::npos) << listed.out;
  expect_one_line_error(run({"inspect", file.string(), "--tensor", "odd.weight"}), "odd.weight");
  fs::remove(file);
}

}  // namespace
}  // namespace pensieve::cli_test
