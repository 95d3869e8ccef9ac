// Tool-call parsing per family, on the exact text each model's own template writes for an assistant tool call
// (taken from the jinja2-rendered fixtures, or rendered from the real template), whole and split anywhere.
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/assistant_output.h"
#include "chat/chat_template.h"
#include "chat/tool_call_format.h"
#include "chat/tool_call_parser.h"
#include "../fixture_templates.h"

using namespace pensieve::chat;
using Kind = OutputPiece::Kind;

namespace {

using pensieve::testing::fixture_case;

std::string template_of(const std::string& name) { return pensieve::testing::fixture_template(name); }

// The jinja2 rendering of the fixture's "tools" case.
std::string tools_case(const std::string& name) { return fixture_case(name, "tools")["expected"].get<std::string>(); }

// The text between `from` (first occurrence) and the next `to`.
std::string between(const std::string& s, const std::string& from, const std::string& to) {
  const size_t a = s.find(from);
  EXPECT_NE(a, std::string::npos) << from;
  const size_t b = s.find(to, a + from.size());
  EXPECT_NE(b, std::string::npos) << to;
  return s.substr(a + from.size(), b - a - from.size());
}

std::vector<OutputPiece> parse_in_pieces(const OutputOptions& o, const std::vector<std::string>& pieces) {
  AssistantOutputParser p(o);
  std::vector<OutputPiece> out;
  for (const auto& piece : pieces) p.push(piece, out);
  p.finish(out);
  // Merge adjacent pieces of one kind, as a client accumulating deltas does.
  std::vector<OutputPiece> merged;
  for (auto& piece : out) {
    if (!merged.empty() && piece.kind != Kind::ToolCall && merged.back().kind == piece.kind) {
      merged.back().text += piece.text;
    } else {
      merged.push_back(piece);
    }
  }
  return merged;
}

OutputOptions tools_on(ToolCallFormat f, std::vector<std::string> names = {"get_weather", "get_time"}) {
  OutputOptions o;
  o.tools = true;
  o.format = f;
  o.tool_names = std::move(names);
  return o;
}

// Whole, split in two at every byte, and one byte at a time: the same pieces every time.
std::vector<OutputPiece> parse_every_way(const OutputOptions& o, const std::string& text) {
  const auto whole = parse_in_pieces(o, {text});
  auto same = [&](const std::vector<OutputPiece>& got, const std::string& how) {
    ASSERT_EQ(got.size(), whole.size()) << how;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].kind, whole[i].kind) << how;
      EXPECT_EQ(got[i].text, whole[i].text) << how;
      EXPECT_EQ(got[i].call.name, whole[i].call.name) << how;
      EXPECT_EQ(got[i].call.arguments, whole[i].call.arguments) << how;
    }
  };
  for (size_t cut = 1; cut < text.size(); ++cut) {
    same(parse_in_pieces(o, {text.substr(0, cut), text.substr(cut)}), "cut at " + std::to_string(cut));
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  same(parse_in_pieces(o, bytes), "byte by byte");
  return whole;
}

void expect_one_call(const std::vector<OutputPiece>& got, const std::string& name, const std::string& args) {
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, Kind::ToolCall);
  EXPECT_EQ(got[0].call.name, name);
  EXPECT_EQ(got[0].call.arguments, args);
}

const std::string kParisArgs = R"({"city":"Paris","unit":"celsius"})";

TEST(ToolCallFormat, RecognizedFromTheFixtureTemplates) {
  EXPECT_EQ(detect_tool_call_format(template_of("Qwen-Qwen2.5-7B-Instruct")), ToolCallFormat::Hermes);
  EXPECT_EQ(detect_tool_call_format(template_of("Qwen-Qwen3-0.6B")), ToolCallFormat::Hermes);
  EXPECT_EQ(detect_tool_call_format(template_of("Qwen-QwQ-32B")), ToolCallFormat::Hermes);
  EXPECT_EQ(detect_tool_call_format(template_of("NousResearch-Hermes-3-Llama-3.1-8B-tool_use")), ToolCallFormat::Hermes);
  EXPECT_EQ(detect_tool_call_format(template_of("meta-llama-Llama-3.1-8B-Instruct")), ToolCallFormat::Llama3);
  EXPECT_EQ(detect_tool_call_format(template_of("meta-llama-Llama-3.2-3B-Instruct")), ToolCallFormat::Llama3);
  EXPECT_EQ(detect_tool_call_format(template_of("Mistral-Small-3.2-24B-Instruct-2506")), ToolCallFormat::Mistral);
  EXPECT_EQ(detect_tool_call_format(template_of("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B")), ToolCallFormat::DeepSeek);
  EXPECT_EQ(detect_tool_call_format(template_of("google-gemma-2-2b-it")), ToolCallFormat::Generic);
  EXPECT_EQ(detect_tool_call_format(kChatMlTemplate), ToolCallFormat::Hermes);  // our fallback teaches <tool_call>
  EXPECT_TRUE(template_has_reasoning(template_of("Qwen-Qwen3-0.6B")));
  EXPECT_TRUE(template_has_reasoning(template_of("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B")));
  EXPECT_FALSE(template_has_reasoning(template_of("meta-llama-Llama-3.1-8B-Instruct")));
}

TEST(ToolCallParser, QwenCallAsItsTemplateWritesIt) {
  for (const std::string name : {"Qwen-Qwen2.5-7B-Instruct", "Qwen-Qwen3-0.6B", "Qwen-QwQ-32B"}) {
    SCOPED_TRACE(name);
    const std::string call = between(tools_case(name), "<|im_start|>assistant\n", "<|im_end|>");
    ASSERT_EQ(call.rfind("<tool_call>", 0), 0u) << call;
    expect_one_call(parse_every_way(tools_on(ToolCallFormat::Hermes), call), "get_weather", kParisArgs);
  }
}

TEST(ToolCallParser, HermesTextBeforeAndSeveralCalls) {
  const std::string text =
      "Let me check both.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}\n</tool_call>";
  const auto got = parse_every_way(tools_on(ToolCallFormat::Hermes), text);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].kind, Kind::Text);
  EXPECT_EQ(got[0].text, "Let me check both.");
  EXPECT_EQ(got[1].call.name, "get_weather");
  EXPECT_EQ(got[1].call.arguments, R"({"city":"Paris"})");
  EXPECT_EQ(got[2].call.name, "get_time");
  EXPECT_EQ(got[2].call.arguments, R"({"zone":"CET"})");
}

TEST(ToolCallParser, LlamaJsonAnswerAsItsTemplateWritesIt) {
  for (const std::string name : {"meta-llama-Llama-3.1-8B-Instruct", "meta-llama-Llama-3.2-3B-Instruct"}) {
    SCOPED_TRACE(name);
    const std::string call =
        between(tools_case(name), "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>");
    ASSERT_EQ(call.rfind("{\"name\"", 0), 0u) << call;
    expect_one_call(parse_every_way(tools_on(ToolCallFormat::Llama3), call), "get_weather", kParisArgs);
  }
}

TEST(ToolCallParser, LlamaPythonTagAndSeveralCalls) {
  const auto got = parse_every_way(
      tools_on(ToolCallFormat::Llama3),
      "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}; "
      "{\"name\": \"get_time\", \"parameters\": {}}");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].call.name, "get_weather");
  EXPECT_EQ(got[0].call.arguments, R"({"city":"Oslo"})");
  EXPECT_EQ(got[1].call.name, "get_time");
  EXPECT_EQ(got[1].call.arguments, "{}");
}

TEST(ToolCallParser, LlamaBuiltinToolCallSyntax) {
  const auto got = parse_every_way(tools_on(ToolCallFormat::Llama3, {"brave_search"}),
                                   "<|python_tag|>brave_search.call(query=\"weather \\\"Paris\\\"\", count=3, safe=True)");
  expect_one_call(got, "brave_search", R"({"query":"weather \"Paris\"","count":3,"safe":true})");
  // Code for the interpreter is not a call: it stays text, tag and all.
  const auto code = parse_every_way(tools_on(ToolCallFormat::Llama3, {"brave_search"}), "<|python_tag|>print(1 + 1)");
  ASSERT_EQ(code.size(), 1u);
  EXPECT_EQ(code[0].text, "<|python_tag|>print(1 + 1)");
}

TEST(ToolCallParser, LlamaJsonThatIsNotACallStaysText) {
  const std::string answer = "{\"name\": \"Bob\", \"age\": 3}";  // "Bob" is no offered tool
  const auto got = parse_every_way(tools_on(ToolCallFormat::Llama3), answer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, Kind::Text);
  EXPECT_EQ(got[0].text, answer);
}

TEST(ToolCallParser, MistralCallAsItsTemplateWritesIt) {
  // The fixture's case fails on its id (the template demands 9 alphanumerics); render it with such an id.
  const ChatTemplate tmpl(template_of("Mistral-Small-3.2-24B-Instruct-2506"));
  nlohmann::ordered_json ctx = {
      {"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_generation_prompt", false},
      {"messages",
       {{{"role", "user"}, {"content", "Weather in Paris?"}},
        {{"role", "assistant"},
         {"content", ""},
         {"tool_calls",
          {{{"id", "abc123XYZ"},
            {"type", "function"},
            {"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}, {"unit", "celsius"}}}}}}}}}}}};
  const std::string rendered = tmpl.render(ctx);
  const std::string call = between(rendered, "[/INST]", "</s>");
  ASSERT_EQ(call.rfind("[TOOL_CALLS]", 0), 0u) << call;
  expect_one_call(parse_every_way(tools_on(ToolCallFormat::Mistral), call), "get_weather", kParisArgs);
}

TEST(ToolCallParser, MistralArrayAndRepeatedForms) {
  auto got = parse_every_way(tools_on(ToolCallFormat::Mistral),
                             "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}, "
                             "{\"name\": \"get_time\", \"arguments\": {}}]");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].call.arguments, R"({"city":"Rome"})");
  EXPECT_EQ(got[1].call.name, "get_time");
  got = parse_every_way(tools_on(ToolCallFormat::Mistral),
                        "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}[TOOL_CALLS]get_time[ARGS]{}");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].call.name, "get_weather");
  EXPECT_EQ(got[1].call.arguments, "{}");
}

TEST(ToolCallParser, DeepSeekCallAsItsTemplateWritesIt) {
  const std::string rendered = tools_case("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B");
  const std::string begin = "<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "begin\xEF\xBD\x9C>";
  const std::string end = "<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "end\xEF\xBD\x9C>";
  const std::string call = begin + between(rendered, begin, end) + end;
  expect_one_call(parse_every_way(tools_on(ToolCallFormat::DeepSeek), call), "get_weather", kParisArgs);
}

TEST(ToolCallParser, GenericAcceptsTagsAndABareJsonAnswer) {
  expect_one_call(parse_every_way(tools_on(ToolCallFormat::Generic),
                                  "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n"),
                  "get_weather", kParisArgs);
  expect_one_call(parse_every_way(tools_on(ToolCallFormat::Generic),
                                  "<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\", "
                                  "\\\"unit\\\": \\\"celsius\\\"}\"}</tool_call>"),
                  "get_weather", kParisArgs);
}

TEST(ToolCallParser, MalformedCallsComeBackVerbatimAsText) {
  const std::vector<std::string> bad = {
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>",  // broken JSON
      "<tool_call>{\"arguments\": {}}</tool_call>",                                         // no name
      "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>",                    // not offered
      "<tool_call>{\"name\": \"get_weather\", \"arguments\": [1]}</tool_call>",            // args not an object
      "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par",            // cut off
  };
  for (const std::string& text : bad) {
    SCOPED_TRACE(text);
    const auto got = parse_every_way(tools_on(ToolCallFormat::Hermes), text);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, Kind::Text);
    EXPECT_EQ(got[0].text, text);
  }
}

TEST(ToolCallParser, PlainTextIsUntouchedAndAlmostMarkersAreText) {
  const std::string text = "Use <tool> tags or [TOOL] like <tool_cal and that is all.";
  for (ToolCallFormat f : {ToolCallFormat::Hermes, ToolCallFormat::Mistral, ToolCallFormat::Llama3}) {
    const auto got = parse_every_way(tools_on(f), text);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].text, text);
  }
}

TEST(ToolCallParser, NothingOfACallIsEmittedBeforeItCloses) {
  ToolCallParser p(ToolCallFormat::Hermes, {});
  std::vector<OutputPiece> out;
  p.push("Sure. <tool", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "Sure.");  // the space is held (it may precede a call), the partial tag too
  p.push("_call>{\"name\": \"f\", \"arguments\": {\"a\": 1}}", out);
  EXPECT_EQ(out.size(), 1u);
  p.push("</tool_call>", out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].call.name, "f");
}

TEST(ReasoningSplitter, QwenThinkingThenAnswerSplitAnywhere) {
  OutputOptions o;
  o.reasoning = true;
  const auto got = parse_every_way(o, "<think>\nOne plus one is two.\n</think>\n\n2");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind, Kind::Reasoning);
  EXPECT_EQ(got[0].text, "One plus one is two.");
  EXPECT_EQ(got[1].kind, Kind::Text);
  EXPECT_EQ(got[1].text, "2");
}

TEST(ReasoningSplitter, PromptThatOpenedThinkAndUnclosedThinking) {
  OutputOptions o;
  o.reasoning = true;
  o.starts_in_reasoning = prompt_opens_reasoning("<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C><think>\n");
  ASSERT_TRUE(o.starts_in_reasoning);
  auto got = parse_every_way(o, "hmm, two.\n</think>\n\nIt is 2.");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, "hmm, two.");
  EXPECT_EQ(got[1].text, "It is 2.");
  got = parse_every_way(o, "still thinking when max_tokens hit");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, Kind::Reasoning);
  o.starts_in_reasoning = false;
  got = parse_every_way(o, "No tags: <b>plain</b> answer.\n");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, Kind::Text);
  EXPECT_EQ(got[0].text, "No tags: <b>plain</b> answer.\n");
}

TEST(AssistantOutput, ThinkingModelCallsAToolAfterThinking) {
  OutputOptions o = tools_on(ToolCallFormat::Hermes);
  o.reasoning = true;
  const auto got = parse_every_way(
      o, "<think>\nI need the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
         "{\"city\": \"Paris\"}}\n</tool_call>");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind, Kind::Reasoning);
  EXPECT_EQ(got[0].text, "I need the weather.");
  EXPECT_EQ(got[1].kind, Kind::ToolCall);
  EXPECT_EQ(got[1].call.arguments, R"({"city":"Paris"})");
}

}  // namespace

namespace {

// Random outputs built from markup fragments, JSON pieces and text, for every family, with and without the
// reasoning splitter: the parser never throws, whole and byte-by-byte parses agree, every call has a name and
// object arguments.
TEST(ToolCallParser, RandomOutputsNeverBreakTheInvariants) {
  const std::vector<std::string> fragments = {
      "<tool_call>", "</tool_call>", "<tool_", "[TOOL_CALLS]", "[ARGS]", "<|python_tag|>", "{", "}", "[", "]",
      "\"name\": ", "\"get_weather\"", "\"arguments\": ", "{\"city\": \"Paris\"}", ", ", "\"", "\\", "\n", " ",
      "Hello", "<think>", "</think>", "get_weather", ";"};
  std::mt19937 rng(1234);
  for (ToolCallFormat f : {ToolCallFormat::Hermes, ToolCallFormat::Llama3, ToolCallFormat::Mistral,
                           ToolCallFormat::DeepSeek, ToolCallFormat::Generic}) {
    for (int round = 0; round < 300; ++round) {
      std::string text;
      const int n = 1 + static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) text += fragments[rng() % fragments.size()];
      SCOPED_TRACE(std::string(tool_call_format_name(f)) + ": " + text);
      OutputOptions o = tools_on(f);
      o.reasoning = (round % 2) == 1;
      const auto whole = parse_in_pieces(o, {text});
      std::vector<std::string> bytes;
      for (char c : text) bytes.emplace_back(1, c);
      const auto split = parse_in_pieces(o, bytes);
      ASSERT_EQ(whole.size(), split.size());
      for (size_t i = 0; i < whole.size(); ++i) {
        EXPECT_EQ(whole[i].kind, split[i].kind);
        EXPECT_EQ(whole[i].text, split[i].text);
        EXPECT_EQ(whole[i].call.arguments, split[i].call.arguments);
        if (whole[i].kind == Kind::ToolCall) {
          EXPECT_FALSE(whole[i].call.name.empty());
          EXPECT_TRUE(nlohmann::json::parse(whole[i].call.arguments).is_object());
        }
      }
    }
  }
}

}  // namespace
