// Streaming detokenization properties: only complete UTF-8 comes out, and the pieces add up to decode().
#include <gtest/gtest.h>

#include <random>

#include "fixtures.h"
#include "gguf/gguf_file.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace pensieve::tokenizer {
namespace {

using testing::fixtures_dir;

const Tokenizer& spm() {
  static Tokenizer tok =
      Tokenizer::from_gguf(gguf::GgufFile::open(fixtures_dir() / "vocab" / "ggml-vocab-llama-spm.gguf"));
  return tok;
}

const Tokenizer& byte_level() {
  static Tokenizer tok =
      Tokenizer::from_gguf(gguf::GgufFile::open(fixtures_dir() / "vocab" / "ggml-vocab-gpt-2.gguf"));
  return tok;
}

std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool render_special = false) {
  IncrementalDetokenizer detok(tok, render_special);
  std::string all;
  for (int32_t id : ids) {
    std::string_view delta = detok.push(id);
    EXPECT_TRUE(is_valid_utf8(delta)) << "partial UTF-8 emitted after id " << id;
    all += delta;
  }
  all += detok.finish();
  return all;
}

TEST(IncrementalDetokenizer, SplitsMultiByteCharactersAcrossByteFallbackTokens) {
  const Tokenizer& tok = spm();
  // "🦙" is not in the Llama 2 vocabulary: it is spelled as four <0xXX> byte tokens.
  auto ids = tok.encode("a🦙b", false, false);
  IncrementalDetokenizer detok(tok);
  std::vector<std::string> deltas;
  for (int32_t id : ids) deltas.emplace_back(detok.push(id));
  EXPECT_EQ(detok.finish(), "");
  std::string all;
  int empty_deltas = 0;
  for (const auto& d : deltas) {
    all += d;
    empty_deltas += d.empty();
  }
  EXPECT_EQ(all, "a🦙b");
  EXPECT_EQ(empty_deltas, 3);  // three of the four byte tokens complete nothing
}

TEST(IncrementalDetokenizer, DropsOnlyTheFirstLeadingSpaceForSentencePiece) {
  const Tokenizer& tok = spm();
  auto ids = tok.encode(" Hello world", false, true);  // BOS, then "▁▁Hello" pieces
  EXPECT_EQ(stream(tok, ids), " Hello world");
  EXPECT_EQ(tok.decode(ids), " Hello world");
  IncrementalDetokenizer continuing(tok, false, /*strip_leading_space=*/false);
  std::string all;
  for (int32_t id : tok.encode("Paris", false, false)) all += continuing.push(id);
  EXPECT_EQ(all, " Paris");
}

TEST(IncrementalDetokenizer, EqualsDecodeForEncodedText) {
  const std::vector<std::string> texts = {"Hello, world!", "нещо на Български", "こんにちは世界 🦙🦙",
                                          "\t\n  mixed  \n\n", "emoji 👩‍👩‍👧 family", ""};
  for (const Tokenizer* tok : {&spm(), &byte_level()}) {
    for (const auto& text : texts) {
      auto ids = tok->encode(text, false, false);
      EXPECT_EQ(stream(*tok, ids), tok->decode(ids)) << text;
    }
  }
}

// Random ids, biased towards byte tokens and multi-byte pieces so that characters are cut in every way.
TEST(IncrementalDetokenizer, RandomSequencesMatchSanitizedDecode) {
  std::mt19937 rng(1234);
  for (const Tokenizer* tok : {&spm(), &byte_level()}) {
    std::vector<int32_t> interesting;
    for (int32_t id = 0; id < tok->vocab_size(); ++id) {
      std::string_view piece = tok->token_piece(id);
      bool non_ascii = false;
      for (char c : piece) non_ascii |= static_cast<uint8_t>(c) >= 0x80;
      if (non_ascii || tok->token_kind(id) == TokenKind::Byte) interesting.push_back(id);
    }
    ASSERT_GT(interesting.size(), 100u);
    std::uniform_int_distribution<int32_t> any(0, tok->vocab_size() - 1);
    std::uniform_int_distribution<std::size_t> pick(0, interesting.size() - 1);
    for (int round = 0; round < 300; ++round) {
      std::vector<int32_t> ids(1 + rng() % 24);
      for (auto& id : ids) id = (rng() % 4 == 0) ? any(rng) : interesting[pick(rng)];
      for (bool render_special : {false, true}) {
        std::string decoded = tok->decode(ids, render_special);
        std::string streamed = stream(*tok, ids, render_special);
        EXPECT_EQ(streamed, to_valid_utf8(decoded));
        if (is_valid_utf8(decoded)) {
          EXPECT_EQ(streamed, decoded);
        }
      }
    }
  }
}

TEST(IncrementalDetokenizer, ByteLevelCharacterSplitAcrossTokens) {
  const Tokenizer& tok = byte_level();
  // GPT-2 spells "🦙" with byte pieces (expected ids from the vocab fixture: " this is 🦙.cpp").
  std::vector<int32_t> ids = {428, 318, 12520, 99, 247, 13, 20322};
  IncrementalDetokenizer detok(tok);
  EXPECT_EQ(detok.push(428), " this");
  EXPECT_EQ(detok.push(318), " is");
  EXPECT_EQ(detok.push(12520), " ");  // the space completes; the emoji's first bytes are held
  EXPECT_TRUE(detok.holding());
  EXPECT_EQ(detok.push(99), "");
  EXPECT_EQ(detok.push(247), "🦙");
  EXPECT_FALSE(detok.holding());
  EXPECT_EQ(detok.push(13), ".");
}

TEST(IncrementalDetokenizer, UnfinishedCharacterAtEndBecomesReplacement) {
  const Tokenizer& tok = byte_level();
  IncrementalDetokenizer detok(tok);
  EXPECT_EQ(detok.push(12520), " ");
  EXPECT_EQ(detok.finish(), "\xEF\xBF\xBD\xEF\xBF\xBD");  // two held bytes of "🦙"
}

TEST(IncrementalDetokenizer, RejectsIdsOutsideTheVocabulary) {
  IncrementalDetokenizer detok(spm());
  EXPECT_THROW(detok.push(-1), TokenizerError);
  EXPECT_THROW(detok.push(32000), TokenizerError);
}

}  // namespace
}  // namespace pensieve::tokenizer
