#include <gtest/gtest.h>

#include "tokenizer/byte_level.h"
#include "tokenizer/regex_splitter.h"
#include "tokenizer/utf8.h"

namespace pensieve::tokenizer {
namespace {

TEST(Utf8, ValidityFollowsTheStandard) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\xA6\x99"));  // é € 🦙
  EXPECT_FALSE(is_valid_utf8("\xC3"));                                  // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));                              // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));                          // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));                      // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

TEST(Utf8, SanitizingReplacesEachBadByte) {
  EXPECT_EQ(to_valid_utf8("a\x80z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(to_valid_utf8("\xE2\x82z"), "\xEF\xBF\xBD\xEF\xBF\xBDz");
  EXPECT_EQ(to_valid_utf8("\xE2\x82\xAC"), "\xE2\x82\xAC");
}

TEST(ByteLevel, AlphabetRoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string encoded;
  byte_level_encode(all, encoded);
  EXPECT_EQ(byte_level_decode(encoded), all);
  EXPECT_EQ(byte_level_char(' '), "\xC4\xA0");   // 'Ġ' U+0120
  EXPECT_EQ(byte_level_char('\n'), "\xC4\x8A");  // 'Ċ' U+010A
  EXPECT_EQ(byte_level_char('A'), "A");
  EXPECT_FALSE(byte_level_decode("\xE4\xB8\x80").has_value());  // 一 is not in the alphabet
}

TEST(RegexSplitter, KeepsMatchesAndGapsInOrder) {
  RegexSplitter splitter({"\\p{N}+"});
  RegexSplitter::Scratch scratch(splitter);
  std::vector<Piece> pieces;
  std::string text = "ab12cd٣٤";  // Arabic-Indic digits are \p{N} too
  splitter.split(text, scratch, pieces);
  std::vector<std::string> got;
  for (auto p : pieces) got.push_back(text.substr(p.begin, p.end - p.begin));
  EXPECT_EQ(got, (std::vector<std::string>{"ab", "12", "cd", "٣٤"}));
}

TEST(RegexSplitter, WhitespaceIncludesNextLine) {
  EXPECT_EQ(widen_whitespace_classes("\\s+(?!\\S)|[^\\s\\p{L}]"),
            "[\\s\\x{85}]+(?![^\\s\\x{85}])|[^\\s\\x{85}\\p{L}]");
  RegexSplitter splitter({"\\s+"});
  RegexSplitter::Scratch scratch(splitter);
  std::vector<Piece> pieces;
  std::string text = "a\xC2\x85" "b";
  splitter.split(text, scratch, pieces);
  EXPECT_EQ(pieces.size(), 3u);
}

TEST(RegexSplitter, InvalidUtf8IsCoveredNotLost) {
  RegexSplitter splitter({"\\p{L}+"});
  RegexSplitter::Scratch scratch(splitter);
  std::vector<Piece> pieces;
  std::string text = "ab\xFF" "cd";
  splitter.split(text, scratch, pieces);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[1].begin, 2u);
  EXPECT_EQ(pieces[1].end, 3u);
}

}  // namespace
}  // namespace pensieve::tokenizer
