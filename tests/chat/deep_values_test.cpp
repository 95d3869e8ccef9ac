// Values from request data can be nested arbitrarily deep; converting them for a template must fail with a
// TemplateError, not overflow the stack.
#include <gtest/gtest.h>

#include "chat/chat_template.h"
#include "chat/value.h"

namespace pensieve::chat {
namespace {

nlohmann::ordered_json nested_array(int levels) {
  nlohmann::ordered_json j = 1;
  for (int i = 0; i < levels; ++i) j = nlohmann::ordered_json::array({std::move(j)});
  return j;
}

TEST(DeepValues, ConversionBeyondTheBoundIsATemplateError) {
  EXPECT_NO_THROW(from_json(nested_array(kMaxJsonDepth - 1)));
  // 100000 levels overflowed the stack when the conversion recursed without a bound.
  EXPECT_THROW(from_json(nested_array(100000)), TemplateError);
}

TEST(DeepValues, RenderWithADeepContextIsATemplateError) {
  ChatTemplate t("{{ messages | tojson }}");
  nlohmann::ordered_json context = {{"messages", nested_array(50000)}};
  EXPECT_THROW(t.render(context), TemplateError);
}

TEST(DeepValues, ATemplateThatAppendsAListToItselfCannotDumpIt) {
  ChatTemplate t("{% set x = [] %}{% set _ = x.append(x) %}{{ x | tojson }}");
  EXPECT_THROW(t.render(nlohmann::ordered_json::object()), TemplateError);
}

TEST(DeepTemplates, NestingBeyondTheBoundIsASyntaxErrorNotAStackOverflow) {
  const int n = 100000;
  EXPECT_THROW(ChatTemplate("{{ " + std::string(n, '(') + "1" + std::string(n, ')') + " }}"), TemplateError);
  EXPECT_THROW(ChatTemplate("{{ " + std::string(n, '-') + "1 }}"), TemplateError);
  std::string not_chain = "{{ ";
  for (int i = 0; i < n; ++i) not_chain += "not ";
  EXPECT_THROW(ChatTemplate{not_chain + "x }}"}, TemplateError);
  std::string blocks;
  for (int i = 0; i < 20000; ++i) blocks += "{% if x %}";
  EXPECT_THROW(ChatTemplate{blocks}, TemplateError);
  // Ordinary nesting is fine.
  EXPECT_EQ(ChatTemplate("{{ ((((1 + 2)))) * -(-3) }}").render(nlohmann::ordered_json::object()), "9");
}

// Found by chat_template_fuzz: a \u escape with non-hex digits escaped as std::invalid_argument.
TEST(TemplateLexer, BadUnicodeEscapesAreSyntaxErrors) {
  EXPECT_THROW(ChatTemplate{R"({{ "\uzzzz" }})"}, TemplateError);
  EXPECT_THROW(ChatTemplate{R"({{ "\u12zz" }})"}, TemplateError);
  EXPECT_THROW(ChatTemplate{R"({{ "\UFFFFFFFF" }})"}, TemplateError);
  EXPECT_EQ(ChatTemplate{R"({{ "\u00e9\x41" }})"}.render(nlohmann::ordered_json::object()), "\u00e9A");
}

}  // namespace
}  // namespace pensieve::chat
