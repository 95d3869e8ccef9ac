// A SentencePiece-style HF export (the Llama 2 / Mistral layout), small enough to work out by hand.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace pensieve::tokenizer {
namespace {

const std::string kMeta = "\xE2\x96\x81";  // U+2581

// ids: <unk>=0 <s>=1 </s>=2, <0x00>..<0xFF> = 3..258, then "▁"=259 "h"=260 "i"=261 "▁h"=262 "▁hi"=263 "hi"=264
std::filesystem::path write_tokenizer() {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  vocab[kMeta] = 259;
  vocab["h"] = 260;
  vocab["i"] = 261;
  vocab[kMeta + "h"] = 262;
  vocab[kMeta + "hi"] = 263;
  vocab["hi"] = 264;
  nlohmann::json j = {
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
        {{"id", 1}, {"content", "<s>"}, {"special", true}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", kMeta}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}}}}}},
      {"pre_tokenizer", nullptr},
      {"decoder", {{"type", "Sequence"}, {"decoders", nlohmann::json::array()}}},
      {"model",
       {{"type", "BPE"},
        {"byte_fallback", true},
        {"unk_token", "<unk>"},
        {"vocab", vocab},
        // "hi" has a token but no merge makes it: HF never merges h+i outside "▁h"+"i".
        {"merges", {kMeta + " h", kMeta + "h i"}}}}};
  auto dir = std::filesystem::temp_directory_path() / ("pensieve_spm_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true})";
  return dir;
}

TEST(HfSentencePiece, MergesByRankWithByteFallback) {
  auto dir = write_tokenizer();
  Tokenizer tok = Tokenizer::from_hf_json(dir / "tokenizer.json");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(tok.model(), VocabModel::SentencePieceBpe);
  EXPECT_EQ(tok.encode("hi", false, false), (std::vector<int32_t>{263}));            // ▁hi
  EXPECT_EQ(tok.encode("hi!", false, true), (std::vector<int32_t>{1, 263, 3 + '!'}));  // BOS, ▁hi, <0x21>
  EXPECT_EQ(tok.encode("ih", false, false), (std::vector<int32_t>{259, 261, 260}));  // ▁ i h: no listed merge
  EXPECT_EQ(tok.encode("hi hi", false, false), (std::vector<int32_t>{263, 263}));
  // "hi" is a token, but no merge produces it, so h and i stay apart when no ▁ precedes them.
  EXPECT_EQ(tok.encode("xhi", false, false), (std::vector<int32_t>{259, 3 + 'x', 260, 261}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 263, 3 + '!', 263}), "hi! hi");
  EXPECT_EQ(tok.token_kind(3), TokenKind::Byte);
  EXPECT_EQ(*tok.unk_id(), 0);
}

}  // namespace
}  // namespace pensieve::tokenizer
