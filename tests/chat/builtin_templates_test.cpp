// The templates pensieve ships (ChatML fallback, llama3, gemma): their exact renderings, including tools and
// tool-call history, and that the calls they write read back through the parser of the family they teach.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/builtin_templates.h"
#include "chat/chat_template.h"
#include "chat/tool_call_format.h"
#include "chat/tool_call_parser.h"

using namespace pensieve::chat;
using Json = nlohmann::ordered_json;

namespace {

Json tool_conversation() {
  return Json::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "",
       "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18C"}
    ]})");
}

TEST(BuiltinTemplates, NamesResolve) {
  for (const auto& name : builtin_template_names()) {
    auto source = builtin_template(name);
    ASSERT_TRUE(source) << name;
    EXPECT_NO_THROW(ChatTemplate{*source}) << name;
  }
  EXPECT_FALSE(builtin_template("no-such-template"));
  EXPECT_EQ(*builtin_template("chatml"), kChatMlTemplate);
}

TEST(BuiltinTemplates, ChatMlRendersToolsAndToolCalls) {
  const ChatTemplate tmpl(kChatMlTemplate);
  const std::string expected =
      "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call functions. Their signatures, one JSON object per line:\n"
      "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}\n"
      "</tools>\n\nTo call one, write a JSON object with its name and arguments between tags, one block per call:\n"
      "<tool_call>\n{\"name\": <function-name>, \"arguments\": <arguments-object>}\n</tool_call><|im_end|>\n"
      "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
      "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
      "<|im_start|>tool\n18C<|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(tmpl.render(tool_conversation()), expected);
}

TEST(BuiltinTemplates, ChatMlWithoutToolsIsPlainChatMl) {
  const ChatTemplate tmpl(kChatMlTemplate);
  Json ctx = tool_conversation();
  ctx.erase("tools");
  ctx["messages"] = Json::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                                    {"role": "assistant", "content": null}])");
  EXPECT_EQ(tmpl.render(ctx),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(BuiltinTemplates, Llama3RendersToolsAndToolCalls) {
  const ChatTemplate tmpl(*builtin_template("llama3"));
  EXPECT_EQ(detect_tool_call_format(*builtin_template("llama3")), ToolCallFormat::Llama3);
  const std::string out = tmpl.render(tool_conversation());
  const std::string expected_tail =
      "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"
      "<|start_header_id|>ipython<|end_header_id|>\n\n18C<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  ASSERT_GE(out.size(), expected_tail.size());
  EXPECT_EQ(out.substr(out.size() - expected_tail.size()), expected_tail);
  EXPECT_EQ(out.rfind("<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.\n\nYou have access", 0), 0u) << out;
  // The call it writes in history is what its parser reads back.
  const auto pieces = parse_tool_calls(ToolCallFormat::Llama3, R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].call.arguments, R"({"city":"Paris"})");
}

TEST(BuiltinTemplates, GemmaFoldsTheSystemPromptIntoTheFirstUserTurn) {
  const ChatTemplate tmpl(*builtin_template("gemma"));
  Json ctx = Json::parse(R"({"bos_token": "<bos>", "add_generation_prompt": true, "messages": [
      {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]})");
  EXPECT_EQ(tmpl.render(ctx),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
            "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
}

}  // namespace
