// Stop strings over text that arrives in pieces: held back while it could still become a stop string,
// cut before the stop string when it does.
#include <gtest/gtest.h>

#include "engine/stop_strings.h"

namespace pensieve::engine {
namespace {

TEST(StopStrings, MatchSpanningPiecesIsCutAndNeverShown) {
  StopStringMatcher m({"lo Wor"});
  std::string out;
  EXPECT_FALSE(m.push("Hel", out));
  EXPECT_EQ(out, "He");  // "l" could be the start of the stop string
  EXPECT_FALSE(m.push("lo W", out));
  EXPECT_EQ(out, "Hel");  // the first "l" is not followed by "o"; "lo W" still could be
  const auto matched = m.push("orld", out);
  ASSERT_TRUE(matched);
  EXPECT_EQ(*matched, "lo Wor");
  EXPECT_EQ(out, "Hel");
}

TEST(StopStrings, HeldTextIsReleasedOnceItCannotStartAStop) {
  StopStringMatcher m({"abc"});
  std::string out;
  m.push("xa", out);
  EXPECT_EQ(out, "x");
  m.push("b", out);
  EXPECT_EQ(out, "x");
  m.push("d", out);
  EXPECT_EQ(out, "xabd");
  m.push("ab", out);
  m.flush(out);
  EXPECT_EQ(out, "xabdab");
}

TEST(StopStrings, EarliestMatchWinsThenTheLongest) {
  StopStringMatcher m({"world", "o w", "o"});
  std::string out;
  const auto matched = m.push("hello world", out);
  ASSERT_TRUE(matched);
  EXPECT_EQ(*matched, "o w");  // "o" and "o w" both start at 4; the longer one is reported
  EXPECT_EQ(out, "hell");
}

TEST(StopStrings, NoStopsPassesEverythingThrough) {
  StopStringMatcher m({"", ""});
  std::string out;
  EXPECT_FALSE(m.push("anything", out));
  EXPECT_EQ(out, "anything");
  EXPECT_EQ(m.held(), 0u);
}

TEST(StopStrings, MultiByteCharactersAreHeldWhole) {
  StopStringMatcher m({"\xC3\xA9t\xC3\xA9"});  // "été"
  std::string out;
  m.push("caf\xC3\xA9", out);
  EXPECT_EQ(out, "caf");
  m.push("!", out);
  EXPECT_EQ(out, "caf\xC3\xA9!");
}

}  // namespace
}  // namespace pensieve::engine
