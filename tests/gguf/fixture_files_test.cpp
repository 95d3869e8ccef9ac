// Reads every GGUF fixture and checks what can be known without pensieve: the HF config.json the models were
// converted from, the tensor lists gguf-py wrote into quant/*.json, and the vocabularies' published sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gguf/gguf_file.h"

namespace fs = std::filesystem;
using pensieve::gguf::GgmlType;
using pensieve::gguf::GgufFile;
using pensieve::gguf::TensorInfo;

namespace {

const fs::path kFixtures = PENSIEVE_FIXTURES_DIR;

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("missing fixture " + p.string());
  return nlohmann::json::parse(in);
}

uint32_t id(GgmlType t) { return static_cast<uint32_t>(t); }

struct ModelCase {
  std::string folder;
  std::string variant;  // f32, f16, bf16, q8_0
};

class ModelFixture : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelFixture, MetadataAndTensorsMatchConfig) {
  const auto& [folder, variant] = GetParam();
  const fs::path dir = kFixtures / "models" / folder;
  const nlohmann::json config = read_json(dir / "config.json");
  GgufFile f = GgufFile::open(dir / (folder + "-" + variant + ".gguf"));

  const std::string arch = config["model_type"];
  EXPECT_EQ(f.get_string("general.architecture"), arch);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_uint(arch + ".block_count"), config["num_hidden_layers"].get<uint64_t>());
  EXPECT_EQ(f.get_uint(arch + ".embedding_length"), config["hidden_size"].get<uint64_t>());
  EXPECT_EQ(f.get_uint(arch + ".feed_forward_length"), config["intermediate_size"].get<uint64_t>());
  EXPECT_EQ(f.get_uint(arch + ".attention.head_count"), config["num_attention_heads"].get<uint64_t>());
  EXPECT_EQ(f.get_uint(arch + ".attention.head_count_kv"), config["num_key_value_heads"].get<uint64_t>());
  EXPECT_EQ(f.get_uint(arch + ".context_length"), config["max_position_embeddings"].get<uint64_t>());
  EXPECT_NEAR(*f.get_float(arch + ".attention.layer_norm_rms_epsilon"), config["rms_norm_eps"].get<double>(), 1e-12);
  EXPECT_FLOAT_EQ(static_cast<float>(*f.get_float(arch + ".rope.freq_base")),
                  config["rope_parameters"]["rope_theta"].get<float>());

  const uint64_t vocab = config["vocab_size"];
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->size(), vocab);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.bos_token_id"), config["bos_token_id"].get<uint64_t>());
  EXPECT_EQ(f.get_uint("tokenizer.ggml.eos_token_id"), config["eos_token_id"].get<uint64_t>());

  // Tensor index from first principles: 9 tensors per llama layer (+2 q/k norms for qwen3), token_embd,
  // output_norm, output unless tied, rope_freqs for Llama 3 rope scaling.
  const uint64_t layers = config["num_hidden_layers"], hidden = config["hidden_size"];
  const uint64_t heads = config["num_attention_heads"], kv_heads = config["num_key_value_heads"];
  // Qwen2's config has no head_dim: its heads split the hidden size evenly.
  const uint64_t head_dim = config.contains("head_dim") ? config["head_dim"].get<uint64_t>() : hidden / heads;
  const uint64_t ffn = config["intermediate_size"];
  const bool tied = config["tie_word_embeddings"], qk_norm = arch == "qwen3", qkv_bias = arch == "qwen2";
  const bool rope_freqs = config["rope_parameters"]["rope_type"] == "llama3";
  std::map<std::string, std::vector<uint64_t>> expected = {{"token_embd.weight", {hidden, vocab}},
                                                           {"output_norm.weight", {hidden}}};
  if (!tied) expected["output.weight"] = {hidden, vocab};
  if (rope_freqs) expected["rope_freqs.weight"] = {head_dim / 2};
  for (uint64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    expected[p + "attn_norm.weight"] = {hidden};
    expected[p + "attn_q.weight"] = {hidden, heads * head_dim};
    expected[p + "attn_k.weight"] = {hidden, kv_heads * head_dim};
    expected[p + "attn_v.weight"] = {hidden, kv_heads * head_dim};
    expected[p + "attn_output.weight"] = {heads * head_dim, hidden};
    expected[p + "ffn_norm.weight"] = {hidden};
    expected[p + "ffn_gate.weight"] = {hidden, ffn};
    expected[p + "ffn_up.weight"] = {hidden, ffn};
    expected[p + "ffn_down.weight"] = {ffn, hidden};
    if (qk_norm) {
      expected[p + "attn_q_norm.weight"] = {head_dim};
      expected[p + "attn_k_norm.weight"] = {head_dim};
    }
    if (qkv_bias) {
      expected[p + "attn_q.bias"] = {heads * head_dim};
      expected[p + "attn_k.bias"] = {kv_heads * head_dim};
      expected[p + "attn_v.bias"] = {kv_heads * head_dim};
    }
  }
  ASSERT_EQ(f.tensors().size(), expected.size());
  const std::map<std::string, GgmlType> matrix_type = {
      {"f32", GgmlType::F32}, {"f16", GgmlType::F16}, {"bf16", GgmlType::BF16}, {"q8_0", GgmlType::Q8_0}};
  uint64_t data_end = 0;
  for (const TensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(expected.count(t.name));
    EXPECT_EQ(t.shape, expected[t.name]);
    // The converter keeps 1-D tensors (norms, rope factors) in F32 and converts the matrices.
    const uint32_t want = t.shape.size() == 1 ? id(GgmlType::F32) : id(matrix_type.at(variant));
    EXPECT_EQ(t.type_id, want);
    EXPECT_EQ(f.tensor_data(t).size(), t.n_bytes);
    EXPECT_EQ((f.data_offset() + t.offset) % 32, 0u);
    data_end = std::max(data_end, f.data_offset() + t.offset + t.n_bytes);
  }
  // The converter pads the last tensor to the alignment: nothing else follows the data.
  EXPECT_EQ((data_end + 31) / 32 * 32, f.file_size());
}

std::vector<ModelCase> model_cases() {
  std::vector<ModelCase> cases;
  for (const char* folder : {"llama-tiny", "llama3-tiny", "qwen3-tiny", "qwen2-tiny"}) {
    for (const char* variant : {"f32", "f16", "bf16", "q8_0"}) cases.push_back({folder, variant});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Models, ModelFixture, ::testing::ValuesIn(model_cases()),
                         [](const auto& info) {
                           std::string n = info.param.folder + "_" + info.param.variant;
                           for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

class QuantFixture : public ::testing::TestWithParam<std::string> {};

// quant/*.json lists every tensor as gguf-py read it: type name, shape, element count, and for F32 tensors the
// raw values (dequantizing F32 is the identity), so F32 bytes are checked value for value.
TEST_P(QuantFixture, TensorIndexMatchesGgufPy) {
  const fs::path json_path = kFixtures / "quant" / ("llama3-tiny-" + GetParam() + ".json");
  const nlohmann::json ref = read_json(json_path);
  GgufFile f = GgufFile::open(kFixtures / "quant" / ref["file"].get<std::string>());
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  ASSERT_EQ(f.tensors().size(), ref["tensors"].size());
  size_t i = 0;
  for (const auto& rt : ref["tensors"]) {
    const TensorInfo& t = f.tensors()[i++];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, rt["name"].get<std::string>());
    EXPECT_EQ(pensieve::gguf::type_name(t.type_id), rt["type"].get<std::string>());
    EXPECT_EQ(t.shape, rt["shape"].get<std::vector<uint64_t>>());
    EXPECT_EQ(t.elements(), rt["n"].get<uint64_t>());
    if (t.type_id != id(GgmlType::F32)) continue;
    auto bytes = f.tensor_data(t);
    ASSERT_EQ(bytes.size(), t.elements() * 4);
    std::vector<float> values(t.elements());
    std::memcpy(values.data(), bytes.data(), bytes.size());
    const auto first = rt["first_values"].get<std::vector<double>>();
    for (size_t k = 0; k < first.size(); ++k) EXPECT_EQ(values[k], static_cast<float>(first[k])) << k;
    double sum = 0;
    for (float v : values) sum += v;
    EXPECT_NEAR(sum, rt["sum"].get<double>(), 1e-9 * (1 + std::abs(rt["sum"].get<double>())));
  }
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantFixture,
                         ::testing::Values("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M",
                                           "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"));

struct VocabCase {
  std::string name;
  std::string model;  // tokenizer.ggml.model
  uint64_t tokens;    // vocabulary size published with each tokenizer
};

class VocabFixture : public ::testing::TestWithParam<VocabCase> {};

TEST_P(VocabFixture, VocabularyIsComplete) {
  const auto& c = GetParam();
  GgufFile f = GgufFile::open(kFixtures / "vocab" / ("ggml-vocab-" + c.name + ".gguf"));
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), c.model);
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->size(), c.tokens);
  if (auto types = f.get_int_array("tokenizer.ggml.token_type")) {
    EXPECT_EQ(types->size(), c.tokens);
  }
  if (auto scores = f.get_float_array("tokenizer.ggml.scores")) {
    EXPECT_EQ(scores->size(), c.tokens);
  }
  // Every id in the expected tokenizations exists.
  std::ifstream out(kFixtures / "vocab" / ("ggml-vocab-" + c.name + ".gguf.out"));
  ASSERT_TRUE(out);
  uint64_t token_id = 0;
  while (out >> token_id) EXPECT_LT(token_id, c.tokens);
}

INSTANTIATE_TEST_SUITE_P(Vocab, VocabFixture,
                         ::testing::Values(VocabCase{"llama-spm", "llama", 32000}, VocabCase{"phi-3", "llama", 32064},
                                           VocabCase{"gpt-2", "gpt2", 50257},
                                           VocabCase{"deepseek-llm", "gpt2", 102400},
                                           VocabCase{"falcon", "gpt2", 65024}, VocabCase{"starcoder", "gpt2", 49152}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

}  // namespace
