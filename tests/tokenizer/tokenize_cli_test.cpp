// `pensieve tokenize` / `pensieve detokenize` driven as a user would, against fixture expectations.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fixtures.h"

namespace pensieve::tokenizer {
namespace {

struct RunResult {
  int status = -1;
  std::string out;  // stdout and stderr together
};

RunResult run(const std::string& args) {
  std::filesystem::path bin = std::filesystem::path(PENSIEVE_BINARY_DIR) / "bin" / "pensieve";
  if (!std::filesystem::exists(bin)) throw std::runtime_error("the pensieve binary is not built: " + bin.string());
  RunResult r;
  FILE* pipe = popen((bin.string() + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  r.status = pclose(pipe);
  return r;
}

std::string llama3_json() { return (testing::fixtures_dir() / "tokenizers" / "llama3" / "tokenizer.json").string(); }
std::string spm_gguf() { return (testing::fixtures_dir() / "vocab" / "ggml-vocab-llama-spm.gguf").string(); }

TEST(TokenizeCli, PrintsIdsFromTokenizerJson) {
  // Ids of "Hello world" from the fixture's cases.jsonl; <|eot_id|> is 128009 when --special is given.
  auto r = run("tokenize --tokenizer " + llama3_json() + " --text 'Hello world<|eot_id|>' --special");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "9906 1917 128009\n");
  r = run("tokenize --tokenizer " + llama3_json() + " --text 'Hello world' --json");
  EXPECT_EQ(r.out, "[9906,1917]\n");
}

TEST(TokenizeCli, AddsBosFromGgufMetadata) {
  auto r = run("tokenize --model " + spm_gguf() + " --text ' Hello' --bos");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "1 29871 15043\n");  // BOS, then the vocab fixture's ids for " Hello"
}

TEST(TokenizeCli, DetokenizePrintsTheExactText) {
  auto r = run("detokenize --tokenizer " + llama3_json() + " --ids 9906,1917,0");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "Hello world!");
}

TEST(TokenizeCli, BadInputIsOneLineError) {
  auto r = run("detokenize --model " + spm_gguf() + " --ids 1,x");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.out, "pensieve: --ids: 'x' is not a token id\n");
  r = run("detokenize --model " + spm_gguf() + " --ids 32000");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.out, "pensieve: --ids: 32000 is outside the vocabulary (size 32000)\n");
  r = run("tokenize --model /nonexistent/model.gguf --text hi");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
}

}  // namespace
}  // namespace pensieve::tokenizer
