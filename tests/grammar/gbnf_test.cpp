#include "grammar/gbnf.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "grammar/grammar_error.h"
#include "matcher.h"

namespace pensieve::grammar {
namespace {

using testing::gbnf;
using testing::matches;
using testing::viable_prefix;

TEST(Gbnf, LiteralsAlternativesAndGroups) {
  auto a = gbnf(R"(root ::= "yes" | "no" ( "!" | "?" )  # a comment
  )");
  EXPECT_TRUE(matches(a, "yes"));
  EXPECT_TRUE(matches(a, "no!"));
  EXPECT_TRUE(matches(a, "no?"));
  EXPECT_FALSE(matches(a, "no"));
  EXPECT_FALSE(matches(a, "yes!"));
  EXPECT_TRUE(viable_prefix(a, "n"));
  EXPECT_FALSE(viable_prefix(a, "x"));
}

TEST(Gbnf, RulesMayBeUsedBeforeTheyAreDefinedAndSpanLines) {
  auto a = gbnf("root ::= greeting \" \" name\n"
                "greeting ::= \"hi\"\n"
                "  | \"hello\"\n"
                "name ::= [a-z]+\n");
  EXPECT_TRUE(matches(a, "hello bob"));
  EXPECT_TRUE(matches(a, "hi x"));
  EXPECT_FALSE(matches(a, "hi "));
  EXPECT_FALSE(matches(a, "hi Bob"));
}

TEST(Gbnf, RepetitionOperators) {
  auto a = gbnf(R"(root ::= "a"{2,3} "b"? "c"* "d"+ "e"{2} "f"{1,})");
  EXPECT_TRUE(matches(a, "aaddeef"));
  EXPECT_TRUE(matches(a, "aaabcccdddeefff"));
  EXPECT_FALSE(matches(a, "addeef"));      // one a
  EXPECT_FALSE(matches(a, "aaaaddeef"));   // four a
  EXPECT_FALSE(matches(a, "aabbddeef"));   // two b
  EXPECT_FALSE(matches(a, "aaeef"));       // no d
  EXPECT_FALSE(matches(a, "aaddeeef"));    // three e
  EXPECT_FALSE(matches(a, "aaddee"));      // no f
}

TEST(Gbnf, ClassesCoverUtf8AndNegation) {
  auto a = gbnf(R"(root ::= [^"\\]* "\"")");
  EXPECT_TRUE(matches(a, "abc\""));
  EXPECT_TRUE(matches(a, "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\""));  // é € 😀
  EXPECT_FALSE(matches(a, "a\\\""));
  EXPECT_FALSE(viable_prefix(a, "\xC3\x28"));      // broken UTF-8
  EXPECT_FALSE(viable_prefix(a, "\xED\xA0\x80"));  // an encoded surrogate
  EXPECT_FALSE(viable_prefix(a, "\xC0\xAF"));      // overlong
  auto greek = gbnf(R"(root ::= [α-ω]+)");
  EXPECT_TRUE(matches(greek, "\xCE\xB1\xCF\x89"));  // αω
  EXPECT_FALSE(matches(greek, "a"));
  auto any = gbnf(R"(root ::= . .)");
  EXPECT_TRUE(matches(any, "a\xE2\x82\xAC"));
  EXPECT_FALSE(matches(any, "abc"));
}

TEST(Gbnf, EscapesInLiterals) {
  auto a = gbnf(R"(root ::= "\x41\n\t\"\\\u00e9")");
  EXPECT_TRUE(matches(a, "A\n\t\"\\\xC3\xA9"));
}

TEST(Gbnf, RightRecursionIsFineAndNestingIsTracked) {
  auto a = gbnf(R"g(root ::= "(" root ")" | "x")g");
  EXPECT_TRUE(matches(a, "x"));
  EXPECT_TRUE(matches(a, "(((x)))"));
  EXPECT_FALSE(matches(a, "((x)"));
  EXPECT_FALSE(viable_prefix(a, "(x))"));
}

TEST(Gbnf, CompleteAndFinishedAreDistinct) {
  auto a = gbnf(R"(root ::= [0-9]+ | "end")");
  const int32_t digits = a.step(a.start(), "12");
  EXPECT_TRUE(a.accepting(digits));
  EXPECT_FALSE(a.finished(digits));  // more digits may follow
  const int32_t end = a.step(a.start(), "end");
  EXPECT_TRUE(a.finished(end));
}

void expect_error(std::string_view text, std::string_view needle) {
  try {
    parse_gbnf(text);
    ADD_FAILURE() << "no error for: " << text;
  } catch (const GrammarError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Gbnf, BadGrammarsAreErrors) {
  expect_error(R"(root ::= x)", "'x' is used but never defined");
  expect_error(R"(start ::= "a")", "no rule 'root'");
  expect_error(R"(root ::= root "a" | "b")", "left-recursive");
  expect_error(R"(root ::= a "x"
                  a ::= b
                  b ::= root | "y")", "left-recursive");
  expect_error(R"(root ::= "a" root)", "never be satisfied");
  expect_error(R"(root ::= "a)", "unterminated");
  expect_error(R"(root ::= [b-a])", "range");
  expect_error(R"(root ::= "a"{3,2})", "n < m");
  expect_error(R"(root ::= "a"{1,100000})", "repetition count");
  expect_error(R"(root ::= ( "a" )", "missing ')'");
  expect_error("root ::= \"a\"\nroot ::= \"b\"", "defined twice");
}

TEST(Gbnf, UnsatisfiableAlternativesAreDroppedNotFatal) {
  auto a = gbnf(R"(root ::= "a" loop | "b"
                   loop ::= "c" loop)");
  EXPECT_TRUE(matches(a, "b"));
  EXPECT_FALSE(viable_prefix(a, "a"));  // would never end
}

TEST(Gbnf, LongChainsOfRulesCompileInLinearTime) {
  // Each rule is productive only through the next one: a pass-until-nothing-changes check would take one pass
  // per rule (quadratic, a way for a client to stall the server); the worklist takes one.
  constexpr int kRules = 30'000;
  std::string text = "root ::= r1\n";
  for (int i = 1; i < kRules; ++i) {
    text += 'r';
    text += std::to_string(i);
    text += " ::= \"a\" r";
    text += std::to_string(i + 1);
    text += '\n';
  }
  text += 'r';
  text += std::to_string(kRules);
  text += " ::= \"b\"\n";
  const auto t0 = std::chrono::steady_clock::now();
  auto a = gbnf(text);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(matches(a, std::string(kRules - 1, 'a') + "b"));
  EXPECT_FALSE(matches(a, "ab"));
}

}  // namespace
}  // namespace pensieve::grammar
