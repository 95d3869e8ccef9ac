// Architecture handling beyond the fixtures: qwen2 (NeoX rope + q/k/v bias) checked against the llama goldens
// by re-labelling the llama model, and refusal of architectures pensieve does not run.
#include <gtest/gtest.h>

#include <cstring>

#include "gguf/gguf_writer.h"
#include "model_fixtures.h"

namespace pensieve::model::testing {
namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("pensieve-model-test-" + std::to_string(::getpid()) + "-" + name);
}

// llama.cpp's converter stores llama q/k rows so that rotating pairs (2i, 2i+1) equals HF's rotate-half;
// a NeoX-rope architecture wants HF's own row order back. Within each head, stored row 2j+k is HF row k*hd/2+j.
std::vector<float> unpermute_rows(const float* w, int64_t rows, int64_t cols, int head_dim) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t h = 0; h < rows / head_dim; ++h) {
    for (int j = 0; j < head_dim / 2; ++j) {
      for (int k = 0; k < 2; ++k) {
        const int64_t stored = h * head_dim + 2 * j + k;
        const int64_t original = h * head_dim + k * (head_dim / 2) + j;
        std::memcpy(out.data() + original * cols, w + stored * cols, static_cast<size_t>(cols) * sizeof(float));
      }
    }
  }
  return out;
}

// Copies an F32 llama GGUF under another architecture name; `as_neox` undoes the q/k permutation and adds
// zero q/k/v biases, as a qwen2 file of the same network would hold.
void relabel(const fs::path& src, const fs::path& dst, const std::string& arch, bool as_neox) {
  const gguf::GgufFile f = gguf::GgufFile::open(src);
  gguf::GgufWriter w;
  for (const auto& e : f.metadata()) {
    std::string key = e.key;
    if (key.rfind("llama.", 0) == 0) key = arch + key.substr(5);
    if (key == "general.architecture") {
      w.set_string(key, arch);
    } else {
      w.set(key, e.value);
    }
  }
  const int head_dim = static_cast<int>(*f.get_int("llama.attention.key_length"));
  for (const auto& t : f.tensors()) {
    auto bytes = f.tensor_data(t);
    const bool permuted = t.name.find("attn_q.weight") != std::string::npos || t.name.find("attn_k.weight") != std::string::npos;
    if (as_neox && permuted) {
      auto rows = unpermute_rows(reinterpret_cast<const float*>(bytes.data()), static_cast<int64_t>(t.shape[1]),
                                 static_cast<int64_t>(t.shape[0]), head_dim);
      w.add_tensor(t.name, gguf::GgmlType::F32, t.shape, [rows](std::span<std::byte> out) {
        std::memcpy(out.data(), rows.data(), out.size());
      });
      const std::string bias = t.name.substr(0, t.name.size() - std::string("weight").size()) + "bias";
      w.add_tensor(bias, gguf::GgmlType::F32, {t.shape[1]}, [](std::span<std::byte> out) {
        std::memset(out.data(), 0, out.size());
      });
    } else {
      w.add_tensor(t.name, static_cast<gguf::GgmlType>(t.type_id), t.shape, [bytes](std::span<std::byte> out) {
        std::memcpy(out.data(), bytes.data(), out.size());
      });
    }
    if (as_neox && t.name.find("attn_v.weight") != std::string::npos) {
      const std::string bias = t.name.substr(0, t.name.size() - std::string("weight").size()) + "bias";
      w.add_tensor(bias, gguf::GgmlType::F32, {t.shape[1]}, [](std::span<std::byte> out) {
        std::memset(out.data(), 0, out.size());
      });
    }
  }
  w.write(dst);
}

TEST(Architecture, Qwen2LayoutOfLlamaTinyMatchesLlamaGoldens) {
  const Fixture f = load_fixture("llama-tiny");
  const fs::path path = temp_path("qwen2.gguf");
  relabel(fixture_dir("llama-tiny") / "llama-tiny-f32.gguf", path, "qwen2", true);
  auto m = Model::load(path, test_backend());
  fs::remove(path);
  ASSERT_TRUE(m->config().rope_neox);
  ASSERT_TRUE(m->config().qkv_bias);
  for (size_t p = 0; p < f.prompts.size(); ++p) {
    const auto got = prefill_all_logits(*m, f.prompts[p], kv::KvType::F32);
    for (size_t r = 0; r < f.prompts[p].size(); ++r) {
      const float* g = f.logits[p].data() + r * static_cast<size_t>(f.vocab);
      const float* o = got.data() + r * static_cast<size_t>(f.vocab);
      float row_max = 0, err = 0;
      for (int i = 0; i < f.vocab; ++i) {
        row_max = std::max(row_max, std::fabs(g[i]));
        err = std::max(err, std::fabs(g[i] - o[i]));
      }
      ASSERT_LE(err, 1e-3f * row_max) << "prompt " << p << " position " << r;
    }
  }
}

TEST(Architecture, UnsupportedArchitectureIsRefusedByName) {
  const fs::path path = temp_path("gpt2.gguf");
  relabel(fixture_dir("llama-tiny") / "llama-tiny-f32.gguf", path, "gpt2", false);
  try {
    Model::load(path, test_backend());
    fs::remove(path);
    FAIL() << "a gpt2 file loaded";
  } catch (const std::runtime_error& e) {
    fs::remove(path);
    EXPECT_NE(std::string(e.what()).find("architecture 'gpt2' is not supported"), std::string::npos) << e.what();
  }
}

TEST(Architecture, TiedOutputUsesTokenEmbedding) {
  // qwen3-tiny has no output.weight; its goldens (checked elsewhere) only match if the embedding is reused.
  auto m = Model::load(fixture_dir("qwen3-tiny") / "qwen3-tiny-f32.gguf", test_backend());
  EXPECT_EQ(m->file().find_tensor("output.weight"), nullptr);
  EXPECT_EQ(m->config().head_dim, 48);
  EXPECT_EQ(m->config().vocab, 512);
}

}  // namespace
}  // namespace pensieve::model::testing
