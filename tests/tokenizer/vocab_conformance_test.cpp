// Every case of llama.cpp's tokenizer conformance files (../shared/fixtures/vocab/), through the GGUF loader.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "gguf/gguf_file.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::tokenizer {
namespace {

using testing::fixtures_dir;
using testing::read_vocab_cases;

std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

class VocabConformance : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabConformance, EncodesEveryCaseExactly) {
  auto path = fixtures_dir() / "vocab" / (std::string("ggml-vocab-") + GetParam() + ".gguf");
  Tokenizer tok = Tokenizer::from_gguf(gguf::GgufFile::open(path));
  auto cases = read_vocab_cases(path);
  ASSERT_GT(cases.size(), 30u);
  int failures = 0;
  for (const auto& c : cases) {
    auto ids = tok.encode(c.text, /*parse_special=*/false, /*add_special=*/false);
    if (ids != c.ids) {
      ++failures;
      ADD_FAILURE() << GetParam() << ": text [" << c.text << "]\n expected " << ids_to_string(c.ids) << "\n got      "
                    << ids_to_string(ids);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST_P(VocabConformance, DecodeRestoresTheText) {
  auto path = fixtures_dir() / "vocab" / (std::string("ggml-vocab-") + GetParam() + ".gguf");
  Tokenizer tok = Tokenizer::from_gguf(gguf::GgufFile::open(path));
  for (const auto& c : read_vocab_cases(path)) {
    bool has_unknown = false;
    for (int32_t id : c.ids) has_unknown |= tok.unk_id() && id == *tok.unk_id();
    if (has_unknown) continue;  // an unknown token loses the text it replaced
    EXPECT_EQ(tok.decode(c.ids), c.text) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VocabConformance,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-llm", "falcon", "starcoder"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(VocabMetadata, SentencePieceDefaultsComeFromTheFile) {
  auto path = fixtures_dir() / "vocab" / "ggml-vocab-llama-spm.gguf";
  Tokenizer tok = Tokenizer::from_gguf(gguf::GgufFile::open(path));
  EXPECT_EQ(tok.model(), VocabModel::SentencePieceBpe);
  EXPECT_EQ(tok.vocab_size(), 32000);
  ASSERT_TRUE(tok.bos_id().has_value());
  EXPECT_EQ(tok.token_text(*tok.bos_id()), "<s>");
  EXPECT_EQ(tok.token_text(*tok.eos_id()), "</s>");
  EXPECT_TRUE(tok.adds_bos());
  // BOS first when asked; the dummy-prefix space makes "Hello" the word-initial piece "▁Hello".
  auto ids = tok.encode("Hello", false, true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], *tok.bos_id());
  EXPECT_EQ(tok.token_text(ids[1]), "\xE2\x96\x81Hello");
  EXPECT_TRUE(tok.is_end_of_generation(*tok.eos_id()));
}

TEST(VocabMetadata, ControlTokensAreTextUnlessParsingSpecials) {
  auto path = fixtures_dir() / "vocab" / "ggml-vocab-llama-spm.gguf";
  Tokenizer tok = Tokenizer::from_gguf(gguf::GgufFile::open(path));
  auto plain = tok.encode("a</s>", false, false);
  auto parsed = tok.encode("a</s>", true, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), *tok.eos_id()), 0);
  ASSERT_FALSE(parsed.empty());
  EXPECT_EQ(parsed.back(), *tok.eos_id());
  EXPECT_EQ(tok.decode(parsed), "a");
  EXPECT_EQ(tok.decode(parsed, /*render_special=*/true), "a</s>");
}

}  // namespace
}  // namespace pensieve::tokenizer
