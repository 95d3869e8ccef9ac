// Whole files: written by synthesize(), read back with GgufFile, checked against the converter's own files and
// against the statistics the weights must have.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "fixture_models.h"
#include "gguf/gguf_file.h"
#include "synth/synthesize.h"
#include "synth/tensor_layout.h"
#include "tensor/dequantize.h"

namespace pensieve::synth {
namespace {

using testing::fixtures;
using testing::shape_from_config;

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("pensieve-synth-test-" + std::to_string(::getpid()) + "-" + name);
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

ImportedTokenizer fixture_tokenizer() {
  return import_tokenizer(fixtures() / "models/llama-tiny/llama-tiny-f32.gguf", find_preset("demo"));
}

ModelShape small_llama() {
  ShapeOverrides o;
  o.layers = 2, o.hidden = 256, o.heads = 4, o.kv_heads = 2, o.ffn = 512, o.context = 2048;
  return apply_overrides(find_preset("llama-3.1-8b"), o);  // keeps Llama 3 rope scaling: rope_freqs present
}

std::vector<float> values_of(const gguf::GgufFile& f, const gguf::TensorInfo& t) {
  std::vector<float> v(t.elements());
  tensor::dequantize(t.type_id, f.tensor_data(t), v);
  return v;
}

// The converter's metadata for the same config, key by key (names, order, types, values), tokenizer included.
TEST(Synthesize, MetadataMatchesConverterForFixtureConfigs) {
  for (const std::string model : {"llama-tiny", "llama3-tiny", "qwen3-tiny"}) {
    const auto path = fixtures() / "models" / model / (model + "-q8_0.gguf");
    const auto reference = gguf::GgufFile::open(path);
    SynthOptions options;
    options.shape = shape_from_config(model);
    options.shape.display_name = *reference.get_string("general.name");
    options.type = OutputType::Q8_0;
    const ImportedTokenizer tokenizer = import_tokenizer(path, options.shape);
    uint64_t n_params = 0;
    for (const auto& t : reference.tensors()) n_params += t.elements();
    const auto md = model_metadata(options, tokenizer, n_params);
    ASSERT_EQ(md.size(), reference.metadata().size()) << model;
    for (size_t i = 0; i < md.size(); ++i) {
      const auto& want = reference.metadata()[i];
      EXPECT_EQ(md[i].key, want.key) << model << " #" << i;
      EXPECT_EQ(md[i].value.type(), want.value.type()) << model << " " << want.key;
      if (want.value.as_array()) continue;  // tokenizer arrays: copied verbatim, compared by the import test
      if (want.value.type() == gguf::ValueType::Float32) {
        EXPECT_EQ(*md[i].value.as_float(), *want.value.as_float()) << model << " " << want.key;
      } else if (want.value.as_string()) {
        EXPECT_EQ(*md[i].value.as_string(), *want.value.as_string()) << model << " " << want.key;
      } else {
        EXPECT_EQ(md[i].value.as_int(), want.value.as_int()) << model << " " << want.key;
      }
    }
  }
}

TEST(Synthesize, SizeLabelLikeGgufPy) {
  EXPECT_EQ(size_label(475776), "476K");
  EXPECT_EQ(size_label(1443072), "1.4M");
  EXPECT_EQ(size_label(1'235'814'400), "1.2B");
  EXPECT_EQ(size_label(8'030'261'248), "8.0B");
}

class SynthesizedFile : public ::testing::TestWithParam<OutputType> {};

TEST_P(SynthesizedFile, ReadsBackWithRandomWeightsOfStd002) {
  SynthOptions options;
  options.shape = small_llama();
  options.type = GetParam();
  options.seed = 7;
  const auto out = temp_path(std::string(output_type_name(options.type)) + ".gguf");
  const ImportedTokenizer tokenizer = fixture_tokenizer();
  synthesize(options, tokenizer, out);

  const auto file = gguf::GgufFile::open(out);
  EXPECT_EQ(*file.get_uint("general.file_type"), llama_file_type(options.type));
  EXPECT_EQ(*file.get_uint("general.quantization_version"), 2u);
  EXPECT_EQ(*file.get_uint("llama.vocab_size"), 512u);
  const auto plan = tensor_layout(options.shape, 512);
  ASSERT_EQ(file.tensors().size(), plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& t = file.tensors()[i];
    ASSERT_EQ(t.name, plan[i].name);
    ASSERT_EQ(t.shape, plan[i].shape);
    const std::vector<float> v = values_of(file, t);
    if (plan[i].role == TensorRole::Norm) {
      EXPECT_EQ(t.type_id, static_cast<uint32_t>(gguf::GgmlType::F32)) << t.name;
      for (float x : v) ASSERT_EQ(x, 1.0f) << t.name;
    } else if (plan[i].role == TensorRole::RopeFreqs) {
      EXPECT_EQ(v, llama3_rope_factors(options.shape));
    } else {
      double sum = 0, sum_sq = 0;
      for (float x : v) sum += x, sum_sq += double(x) * x;
      const double n = static_cast<double>(v.size());
      const double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
      // n >= 65536 samples: the sample std is within ~0.5% of 0.02; quantization moves it by a few percent.
      EXPECT_NEAR(stddev, 0.02, 0.02 * 0.08) << t.name;
      EXPECT_NEAR(mean, 0.0, 0.02 * 0.02) << t.name;
    }
  }
  std::filesystem::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Types, SynthesizedFile,
                         ::testing::Values(OutputType::F16, OutputType::BF16, OutputType::Q8_0, OutputType::Q4_0,
                                           OutputType::Q4_K_M),
                         [](const auto& info) { return std::string(output_type_name(info.param)); });

TEST(Synthesize, QuantMixFollowsLlamaQuantize) {
  SynthOptions options;
  options.shape = small_llama();
  options.type = OutputType::Q4_K_M;
  const auto out = temp_path("mix.gguf");
  synthesize(options, fixture_tokenizer(), out);
  const auto file = gguf::GgufFile::open(out);
  auto type_of = [&](const char* name) { return std::string(gguf::type_name(file.find_tensor(name)->type_id)); };
  EXPECT_EQ(type_of("output.weight"), "Q6_K");
  EXPECT_EQ(type_of("token_embd.weight"), "Q4_K");
  EXPECT_EQ(type_of("blk.0.attn_q.weight"), "Q4_K");
  EXPECT_EQ(type_of("blk.0.attn_norm.weight"), "F32");
  EXPECT_EQ(type_of("rope_freqs.weight"), "F32");
  std::filesystem::remove(out);

  options.type = OutputType::Q4_0;
  synthesize(options, fixture_tokenizer(), out);
  const auto q4 = gguf::GgufFile::open(out);
  EXPECT_EQ(std::string(gguf::type_name(q4.find_tensor("output.weight")->type_id)), "Q6_K");
  EXPECT_EQ(std::string(gguf::type_name(q4.find_tensor("blk.1.ffn_down.weight")->type_id)), "Q4_0");
  std::filesystem::remove(out);
}

// --zero-output-norm: the final norm is all zeros (so every logit is 0), every other norm stays 1.
TEST(Synthesize, ZeroOutputNormZeroesOnlyTheFinalNorm) {
  SynthOptions options;
  options.shape = small_llama();
  options.type = OutputType::Q8_0;
  options.zero_output_norm = true;
  const auto out = temp_path("zero-norm.gguf");
  synthesize(options, fixture_tokenizer(), out);
  const auto file = gguf::GgufFile::open(out);
  auto values = [&](const char* name) {
    const gguf::TensorInfo* t = file.find_tensor(name);
    std::vector<float> v(t->elements());
    tensor::dequantize(t->type_id, file.tensor_data(*t), v);
    return v;
  };
  for (float x : values("output_norm.weight")) EXPECT_EQ(x, 0.0f);
  for (float x : values("blk.0.attn_norm.weight")) EXPECT_EQ(x, 1.0f);
  std::filesystem::remove(out);
}

TEST(Synthesize, DeterministicForASeedWhateverTheThreads) {
  SynthOptions options;
  options.shape = small_llama();
  options.type = OutputType::Q8_0;
  options.seed = 42;
  const ImportedTokenizer tokenizer = fixture_tokenizer();
  const auto a = temp_path("a.gguf"), b = temp_path("b.gguf"), c = temp_path("c.gguf");
  options.threads = 2;
  synthesize(options, tokenizer, a);
  options.threads = 1;
  synthesize(options, tokenizer, b);
  options.seed = 43;
  synthesize(options, tokenizer, c);
  const std::string bytes_a = file_bytes(a);
  EXPECT_FALSE(bytes_a.empty());
  EXPECT_EQ(bytes_a, file_bytes(b));
  EXPECT_NE(bytes_a, file_bytes(c));
  for (const auto& p : {a, b, c}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace pensieve::synth
