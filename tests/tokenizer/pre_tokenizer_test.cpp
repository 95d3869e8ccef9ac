// Pre-tokenizer families named by tokenizer.ggml.pre, beyond the ones the vocab fixtures exercise.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fixtures.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/regex_splitter.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::tokenizer {
namespace {

std::vector<std::string> split(std::string_view family, const std::string& text) {
  RegexSplitter splitter(pre_tokenizer_family(family).regexes);
  RegexSplitter::Scratch scratch(splitter);
  std::vector<Piece> pieces;
  splitter.split(text, scratch, pieces);
  std::vector<std::string> out;
  for (auto p : pieces) out.push_back(text.substr(p.begin, p.end - p.begin));
  return out;
}

TEST(PreTokenizerFamilies, EveryNamedFamilyCompilesAndCoversTheText) {
  const std::string text = "Hello, World! It's 2024-01-15 \u00e9t\u00e9 \u4f60\u597d\u4e16\u754c  \n\n\tx=1234567;";
  for (const char* name : {"llama-bpe", "llama3", "dbrx", "smaug-bpe", "qwen2", "stablelm2", "deepseek-llm",
                           "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "refact", "command-r", "smollm",
                           "gpt-2", "mpt", "olmo", "gpt-neox", "jais", "poro-chat", "bloom", "viking", "tekken",
                           "gpt-4o", "llama4", "seed-coder", "bailingmoe", "chatglm-bpe", "default", ""}) {
    auto pieces = split(name, text);
    std::string joined;
    for (const auto& p : pieces) {
      EXPECT_FALSE(p.empty()) << name;
      joined += p;
    }
    EXPECT_EQ(joined, text) << name;
  }
}

TEST(PreTokenizerFamilies, UnknownNameFallsBackToDefault) {
  EXPECT_FALSE(pre_tokenizer_family("no-such-family").known);
  EXPECT_TRUE(pre_tokenizer_family("qwen2").known);
}

// Expected splits worked out by hand from the patterns' definitions.
TEST(PreTokenizerFamilies, DigitGroupingDiffersByFamily) {
  EXPECT_EQ(split("llama-bpe", "1234567"), (std::vector<std::string>{"123", "456", "7"}));
  EXPECT_EQ(split("qwen2", "123"), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(split("gpt-2", " 1234"), (std::vector<std::string>{" 1234"}));
  EXPECT_EQ(split("starcoder", " 12"), (std::vector<std::string>{" ", "1", "2"}));
}

TEST(PreTokenizerFamilies, Llama3KeepsContractionsAndNewlineRuns) {
  EXPECT_EQ(split("llama-bpe", "I'M here\n\n  ok"),
            (std::vector<std::string>{"I", "'M", " here", "\n\n", " ", " ok"}));
}

TEST(Tokenizer, EncodesConcurrentlyFromSeveralThreads) {
  Tokenizer tok = Tokenizer::from_hf_json(testing::fixtures_dir() / "tokenizers" / "qwen3" / "tokenizer.json");
  const std::string text = "The quick brown fox jumps over the lazy dog. \u4f60\u597d\u4e16\u754c 12345 <|im_end|>";
  const auto expected = tok.encode(text, true, false);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (tok.encode(text, true, false) != expected) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace pensieve::tokenizer
