// The ChatML fallback for models without a template, and flattening of OpenAI-style content parts.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

using namespace pensieve::chat;
using Json = nlohmann::ordered_json;

TEST(ChatMlFallback, ChosenOnlyWhenTheModelHasNoTemplate) {
  EXPECT_TRUE(choose_template(std::nullopt).is_fallback);
  EXPECT_TRUE(choose_template(std::string()).is_fallback);
  TemplateChoice own = choose_template(std::string("{{ 1 }}"));
  EXPECT_FALSE(own.is_fallback);
  EXPECT_EQ(own.source, "{{ 1 }}");
}

TEST(ChatMlFallback, RendersTheChatMlLayout) {
  const ChatTemplate tmpl(choose_template(std::nullopt).source);
  Json ctx = Json::parse(R"({"messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Hi"}], "add_generation_prompt": true})");
  EXPECT_EQ(tmpl.render(ctx),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  ctx["add_generation_prompt"] = false;
  EXPECT_EQ(tmpl.render(ctx), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ContentParts, TextPartsAreJoinedIntoOneString) {
  Json messages = Json::parse(R"([{"role": "user", "content": [{"type": "text", "text": "Part one."},
                                                               {"type": "text", "text": "Part two."}]},
                                  {"role": "assistant", "content": "plain"}])");
  Json flat = flatten_content_parts(messages);
  EXPECT_EQ(flat[0]["content"], "Part one.\nPart two.");
  EXPECT_EQ(flat[1]["content"], "plain");
  EXPECT_EQ(flatten_content_parts(messages, "")[0]["content"], "Part one.Part two.");
  // The original is left alone.
  EXPECT_TRUE(messages[0]["content"].is_array());
}

TEST(ContentParts, NonTextPartsAreRefused) {
  Json messages = Json::parse(R"([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])");
  EXPECT_THROW(flatten_content_parts(messages), TemplateError);
}

TEST(ContentParts, FlatteningLetsStringOnlyTemplatesRender) {
  // Qwen2.5-style concatenation fails on a list (as Python does) but works once flattened.
  const ChatTemplate tmpl("{% for m in messages %}{{ '<' + m.role + '>' + m.content }}{% endfor %}");
  Json ctx = Json::parse(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]})");
  EXPECT_THROW(tmpl.render(ctx), TemplateError);
  ctx["messages"] = flatten_content_parts(ctx["messages"]);
  EXPECT_EQ(tmpl.render(ctx), "<user>a");
}
