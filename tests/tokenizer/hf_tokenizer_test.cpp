// The real Llama 3 and Qwen3 tokenizer.json files against HF tokenizers' own output (cases.jsonl).
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::tokenizer {
namespace {

using testing::fixtures_dir;

struct Loaded {
  Tokenizer tokenizer;
  std::vector<testing::TokenizerCase> cases;
};

const Loaded& load(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Loaded>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto dir = fixtures_dir() / "tokenizers" / name;
    std::vector<testing::TokenizerCase> cases;
    std::istringstream lines(testing::read_file(dir / "cases.jsonl"));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      cases.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>()});
    }
    slot = std::make_unique<Loaded>(Loaded{Tokenizer::from_hf_json(dir / "tokenizer.json"), std::move(cases)});
  }
  return *slot;
}

class HfTokenizer : public ::testing::TestWithParam<const char*> {};

TEST_P(HfTokenizer, EncodesEveryCaseExactly) {
  const Loaded& l = load(GetParam());
  ASSERT_GT(l.cases.size(), 50u);
  for (const auto& c : l.cases) {
    // HF matches added tokens written in the text; add_special_tokens was off.
    EXPECT_EQ(l.tokenizer.encode(c.text, /*parse_special=*/true, /*add_special=*/false), c.ids)
        << GetParam() << ": [" << c.text << "]";
  }
}

TEST_P(HfTokenizer, DecodeRestoresTheText) {
  const Loaded& l = load(GetParam());
  for (const auto& c : l.cases) {
    EXPECT_EQ(l.tokenizer.decode(c.ids, /*render_special=*/true), c.text) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfTokenizer, ::testing::Values("llama3", "qwen3"));

TEST(HfTokenizerConfig, Llama3SpecialTokens) {
  const Tokenizer& tok = load("llama3").tokenizer;
  EXPECT_EQ(tok.vocab_size(), 128256);
  ASSERT_TRUE(tok.bos_id().has_value());
  EXPECT_EQ(*tok.bos_id(), 128000);  // <|begin_of_text|>
  EXPECT_EQ(*tok.eos_id(), 128001);  // <|end_of_text|>
  EXPECT_TRUE(tok.is_end_of_generation(128009));  // <|eot_id|>
  EXPECT_EQ(tok.token_kind(128009), TokenKind::Control);
  // Without parse_special the same text is ordinary characters.
  auto ids = tok.encode("<|eot_id|>", false, false);
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(tok.decode(ids), "<|eot_id|>");
  EXPECT_NE(tok.chat_template().find("<|start_header_id|>"), std::string::npos);
}

TEST(HfTokenizerConfig, Qwen3TemplateAndEos) {
  const Tokenizer& tok = load("qwen3").tokenizer;
  EXPECT_FALSE(tok.bos_id().has_value());
  ASSERT_TRUE(tok.eos_id().has_value());
  EXPECT_EQ(tok.token_text(*tok.eos_id()), "<|im_end|>");
  EXPECT_NE(tok.chat_template().find("<|im_start|>"), std::string::npos);
  EXPECT_FALSE(tok.adds_bos());
}

TEST(HfTokenizerConfig, Qwen3NormalizesToNfc) {
  const Tokenizer& tok = load("qwen3").tokenizer;
  // "é" written as e + COMBINING ACUTE ACCENT must tokenize as the precomposed U+00E9 does.
  EXPECT_EQ(tok.encode("caf\x65\xCC\x81", false, false), tok.encode("caf\xC3\xA9", false, false));
}

}  // namespace
}  // namespace pensieve::tokenizer
