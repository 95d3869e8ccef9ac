// Constraint fields: which grammar a request body asks for, checked by walking known-good and known-bad
// outputs through the compiled grammar with the fixture model's own tokenizer.
#include "api/constraint_fields.h"

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "api/anthropic.h"
#include "api/api_error.h"
#include "api/openai.h"
#include "adapter_test_support.h"
#include "chat/tool_call_parser.h"
#include "fake_engine.h"

namespace pensieve::testing {
namespace {

using api::Json;

// Whether the grammar lets a model write exactly `text` (token by token) and then end.
bool accepts(const std::shared_ptr<grammar::TokenConstraint>& c, const std::string& text) {
  grammar::GrammarCursor cursor(c);
  for (int32_t t : tok().encode(text)) {
    if (!cursor.allowed().test(t) || !cursor.advance(t)) return false;
  }
  return cursor.accepting();
}

struct Harness {
  // `chat_template`: what --chat-template would give; none: the fixture's own (it has none, so ChatML).
  explicit Harness(std::optional<std::string> chat_template = std::nullopt)
      : model("m", engine, tok(), std::move(chat_template)) {}

  FakeEngine engine;
  api::ServedModel model;

  std::shared_ptr<grammar::TokenConstraint> openai(const Json& extra) {
    Json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    body.update(extra);
    return api::openai_output_constraint(api::Fields(body, ""), model);
  }
  std::shared_ptr<grammar::TokenConstraint> anthropic(const Json& extra) {
    Json body = {{"model", "m"}, {"max_tokens", 10}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    body.update(extra);
    return api::anthropic_output_constraint(api::Fields(body, ""), model);
  }
};

const Json kWeather = {{"type", "function"},
                       {"function", {{"name", "get_weather"},
                                     {"parameters", {{"type", "object"},
                                                     {"properties", {{"city", {{"type", "string"}}}}},
                                                     {"required", {"city"}}}}}}};
const Json kTime = {{"type", "function"}, {"function", {{"name", "get_time"}}}};

std::string read_template(const std::string& name) {
  std::ifstream in(std::string(PENSIEVE_FIXTURES_DIR) + "/templates/" + name + "/template.jinja");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ConstraintFields, NoConstraintFieldsMeanNoGrammar) {
  Harness h;
  EXPECT_EQ(h.openai(Json::object()), nullptr);
  EXPECT_EQ(h.openai({{"response_format", {{"type", "text"}}}, {"tools", {kWeather}}, {"tool_choice", "auto"}}), nullptr);
  EXPECT_EQ(h.anthropic({{"tool_choice", {{"type", "auto"}}}}), nullptr);
}

TEST(ConstraintFields, ResponseFormats) {
  Harness h;
  auto object = h.openai({{"response_format", {{"type", "json_object"}}}});
  EXPECT_TRUE(accepts(object, R"({"anything": [1, {"x": null}]})"));
  EXPECT_FALSE(accepts(object, "[1]"));
  auto schema = h.openai({{"response_format",
                           {{"type", "json_schema"},
                            {"json_schema", {{"name", "n"}, {"strict", true},
                                             {"schema", {{"type", "object"},
                                                         {"properties", {{"n", {{"type", "integer"}}}}},
                                                         {"required", {"n"}}, {"additionalProperties", false}}}}}}}});
  EXPECT_TRUE(accepts(schema, R"({"n": 12})"));
  EXPECT_FALSE(accepts(schema, R"({"n": "12"})"));
  EXPECT_EQ(schema, h.openai({{"response_format", {{"type", "json_schema"},
                                                   {"json_schema", {{"name", "n"}, {"strict", true},
                                                                    {"schema", {{"type", "object"},
                                                                                {"properties", {{"n", {{"type", "integer"}}}}},
                                                                                {"required", {"n"}}, {"additionalProperties", false}}}}}}}}))
      << "the same schema again reuses the compiled grammar";
}

TEST(ConstraintFields, GrammarExtensionOnBothApis) {
  Harness h;
  const Json g = {{"grammar", R"(root ::= "yes" | "no")"}};
  EXPECT_TRUE(accepts(h.openai(g), "yes"));
  EXPECT_FALSE(accepts(h.openai(g), "maybe"));
  EXPECT_TRUE(accepts(h.anthropic(g), "no"));
}

TEST(ConstraintFields, ForcedToolCallsUseTheFamilyMarkup) {
  Harness h;  // the fixture has no chat template: the ChatML fallback, Hermes markup
  auto named = h.openai({{"tools", {kWeather, kTime}},
                         {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}});
  const std::string call = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  EXPECT_TRUE(accepts(named, call));
  EXPECT_TRUE(accepts(named, call + "\n" + call));  // parallel_tool_calls defaults to true
  EXPECT_FALSE(accepts(named, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(named, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(named, "Sure!"));
  auto any = h.openai({{"tools", {kWeather, kTime}}, {"tool_choice", "required"}, {"parallel_tool_calls", false}});
  EXPECT_TRUE(accepts(any, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts(any, call + "\n" + call));
  const Json anthropic_tools = {{{"name", "get_weather"}, {"input_schema", kWeather["function"]["parameters"]}},
                                {{"name", "get_time"}, {"input_schema", {{"type", "object"}}}}};
  auto a_any = h.anthropic({{"tools", anthropic_tools}, {"tool_choice", {{"type", "any"}}}});
  EXPECT_TRUE(accepts(a_any, call));
  auto a_tool = h.anthropic({{"tools", anthropic_tools},
                             {"tool_choice", {{"type", "tool"}, {"name", "get_time"}, {"disable_parallel_tool_use", true}}}});
  EXPECT_TRUE(accepts(a_tool, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(a_tool, call));
}

// DeepSeek-R1's markup for get_weather({"city": "Paris"}), written out from its template.
std::string deepseek_weather_call() {
  const std::string bar = "\xEF\xBD\x9C", space = "\xE2\x96\x81";  // the fullwidth bar and the block space
  const auto marker = [&](const std::string& what) { return "<" + bar + "tool" + space + what + bar + ">"; };
  return marker("calls" + space + "begin") + marker("call" + space + "begin") + "function" + marker("sep") +
         "get_weather\n```json\n{\"city\": \"Paris\"}\n```" + marker("call" + space + "end") +
         marker("calls" + space + "end");
}

// A forced call is written in the markup that the tool-call parser (src/chat) reads for the served template's
// family (the template given as --chat-template here), so it comes back as tool_calls / tool_use. The calls
// below are written by hand from each family's documented syntax.
TEST(ConstraintFields, ForcedCallsAreWhatTheServedTemplatesParserReads) {
  const std::string hermes =
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  const std::pair<const char*, std::string> cases[] = {
      {"Qwen-Qwen3-0.6B", hermes},
      {"Qwen-Qwen2.5-7B-Instruct", hermes},
      {"google-gemma-2-2b-it", hermes},  // no known family: the generic parser, which reads <tool_call> blocks
      {"meta-llama-Llama-3.1-8B-Instruct", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"},
      {"Mistral-Small-3.2-24B-Instruct-2506",
       "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]"},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", deepseek_weather_call()},
  };
  for (const auto& [name, call] : cases) {
    Harness h(read_template(name));
    const auto forced = h.openai({{"tools", {kWeather, kTime}}, {"tool_choice", "required"}});
    EXPECT_TRUE(accepts(forced, call)) << name;
    EXPECT_FALSE(accepts(forced, "{\"city\": \"Paris\"}")) << name;
    const std::vector<chat::OutputPiece> parsed = chat::parse_tool_calls(h.model.tool_format(), call, {"get_weather"});
    ASSERT_EQ(parsed.size(), 1u) << name;
    EXPECT_EQ(parsed[0].kind, chat::OutputPiece::Kind::ToolCall) << name;
    EXPECT_EQ(parsed[0].call.name, "get_weather") << name;
    EXPECT_EQ(Json::parse(parsed[0].call.arguments), Json({{"city", "Paris"}})) << name;
  }
  // The override wins over the fixture's own template (none: ChatML, Hermes markup).
  Harness llama(read_template("meta-llama-Llama-3.1-8B-Instruct"));
  EXPECT_FALSE(accepts(llama.openai({{"tools", {kWeather}}, {"tool_choice", "required"}}), hermes));
}

void expect_400(const std::function<void()>& f, const std::string& param, const std::string& text = {}) {
  try {
    f();
    ADD_FAILURE() << "no error for " << param;
  } catch (const api::ApiError& e) {
    EXPECT_EQ(e.kind(), api::ErrorKind::InvalidRequest);
    EXPECT_EQ(e.param(), param) << e.what();
    if (!text.empty()) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }
}

TEST(ConstraintFields, BadConstraintsAre400sNamingTheField) {
  Harness h;
  expect_400([&] { h.openai({{"tool_choice", "required"}}); }, "tool_choice");
  expect_400([&] { h.openai({{"tools", {kWeather}}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}); },
             "tool_choice.function.name");
  expect_400([&] { h.openai({{"grammar", "root ::= ("}}); }, "grammar");
  expect_400([&] { h.openai({{"grammar", "root ::= \"a\""}, {"response_format", {{"type", "json_object"}}}}); },
             "response_format");
  expect_400([&] { h.openai({{"response_format", {{"type", "json_schema"}}}}); }, "response_format.json_schema");
  expect_400([&] {
    h.openai({{"response_format", {{"type", "json_schema"},
                                   {"json_schema", {{"name", "x"}, {"schema", {{"type", "integer"}, {"multipleOf", 2}}}}}}}});
  }, "response_format.json_schema.schema", "'multipleOf'");
  Json strict_tool = kWeather;
  strict_tool["function"]["strict"] = true;
  strict_tool["function"]["parameters"]["properties"]["city"]["pattern"] = "^[A-Z]";
  expect_400([&] { h.openai({{"tools", {strict_tool}}, {"tool_choice", "required"}}); },
             "tools[0].function.parameters", "'pattern'");
  strict_tool["function"]["strict"] = false;  // not strict: enforced as far as the grammar can
  EXPECT_NE(h.openai({{"tools", {strict_tool}}, {"tool_choice", "required"}}), nullptr);
  expect_400([&] { h.anthropic({{"tool_choice", {{"type", "any"}}}}); }, "tool_choice");
  expect_400([&] { h.anthropic({{"tool_choice", {{"type", "sometimes"}}}}); }, "tool_choice.type");
}

// DeepSeek-R1's template (the fixture's copy, with enable_thinking) opens <think> in the prompt; a constrained
// answer holds from the first token, so it is read as the answer, not as reasoning: the JSON comes back as
// content, a forced call as a tool call.
TEST(ConstraintFields, AConstrainedAnswerAfterAnOpenThinkIsNotReasoning) {
  Harness h(read_template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"));
  const api::ServedModel* models[] = {&h.model};
  const auto message = [&](const std::string& extra) {
    h.engine.script = {"{\"a\": ", "1}"};
    auto o = api::openai_chat_completions(models, R"({"model":"m","messages":[{"role":"user","content":"hi"}],)"
                                                  R"("chat_template_kwargs":{"enable_thinking":true})" + extra + "}");
    return Json::parse(run_to_end(*std::get<std::unique_ptr<api::Generation>>(o)))["choices"][0]["message"];
  };
  EXPECT_EQ(message("")["reasoning_content"], "{\"a\": 1}") << "without a grammar the prompt's <think> holds";
  const Json constrained = message(R"(,"response_format":{"type":"json_object"})");
  EXPECT_EQ(constrained["content"], "{\"a\": 1}");
  EXPECT_FALSE(constrained.contains("reasoning_content")) << constrained.dump();

  h.engine.script = {deepseek_weather_call()};
  auto o = api::anthropic_messages(models, R"({"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hi"}],
      "tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},
      "thinking":{"type":"enabled","budget_tokens":100}})");
  const Json reply = Json::parse(run_to_end(*std::get<std::unique_ptr<api::Generation>>(o)));
  EXPECT_EQ(reply["stop_reason"], "tool_use") << reply.dump();
  ASSERT_EQ(reply["content"].size(), 1u) << reply.dump();
  EXPECT_EQ(reply["content"][0]["type"], "tool_use");
  EXPECT_EQ(reply["content"][0]["input"], Json({{"city", "Paris"}}));
}

TEST(ConstraintFields, TheAdaptersHandTheGrammarToTheEngine) {
  Harness h;
  const api::ServedModel* models[] = {&h.model};
  auto outcome = api::openai_chat_completions(
      models, R"({"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<api::Generation>>(outcome));
  EXPECT_NE(h.engine.last()->request.grammar, nullptr);
  outcome = api::anthropic_messages(models, R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],
                                                "grammar":"root ::= \"x\""})");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<api::Generation>>(outcome));
  EXPECT_NE(h.engine.last()->request.grammar, nullptr);
  outcome = api::openai_completions(models, R"({"model":"m","prompt":"hi","grammar":"root ::= \"x\""})");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<api::Generation>>(outcome));
  EXPECT_NE(h.engine.last()->request.grammar, nullptr);
}

}  // namespace
}  // namespace pensieve::testing
