// Agents' API through the adapters, with a scripted engine: tool-call history rendered by real templates
// exactly as jinja2 renders the fixtures, tool calls and reasoning out of the text on both APIs (whole and
// streamed), tool_choice "none", chat_template_kwargs, Anthropic thinking and cache accounting.
#include <sstream>

#include <gtest/gtest.h>

#include "api/anthropic.h"
#include "api/api_error.h"
#include "api/json_fields.h"
#include "api/openai.h"
#include "../fixture_templates.h"
#include "fake_engine.h"
#include "adapter_test_support.h"
#include "tokenizer/byte_level.h"

namespace pensieve::testing {
namespace {

using api::Json;

std::string template_of(const std::string& name) { return fixture_template(name); }

api::Generation& generation(api::Outcome& o) { return *std::get<std::unique_ptr<api::Generation>>(o); }

// The `data:` payloads of an SSE stream (without [DONE]).
std::vector<Json> sse_data(const std::string& bytes) {
  std::vector<Json> out;
  std::istringstream in(bytes);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("data: ", 0) == 0 && line != "data: [DONE]") out.push_back(Json::parse(line.substr(6)));
  }
  return out;
}

struct Fixture {
  FakeEngine engine;
  std::unique_ptr<api::ServedModel> model;
  explicit Fixture(const std::string& template_name, std::vector<std::string> script = {}) {
    engine.script = std::move(script);
    model = std::make_unique<api::ServedModel>("m", engine, tok(), template_of(template_name));
  }
  std::span<const api::ServedModel* const> models() {
    list[0] = model.get();
    return list;
  }
  // The prompt the engine got, as text (special tokens written out).
  std::string prompt() const { return tok().decode(engine.last()->request.prompt, /*render_special=*/true); }
  const api::ServedModel* list[1] = {nullptr};
};

const char* kTools = R"([{"type": "function", "function": {"name": "get_weather",
  "description": "Get the current weather in a city", "parameters": {"type": "object", "properties":
  {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
  "required": ["city"]}}}])";

// The fixtures' "tools" conversation as the OpenAI SDK sends it: content null, arguments a JSON string, the
// tool message without a name.
std::string openai_tool_history_body(bool stream = false) {
  Json body = {{"model", "m"}, {"max_tokens", 8}, {"stream", stream}, {"tools", Json::parse(kTools)}};
  body["messages"] = Json::parse(R"([
    {"role": "system", "content": "Use tools when needed."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 18}"}])");
  return body.dump();
}

// The same conversation in Anthropic's shape.
std::string anthropic_tool_history_body(const std::string& extra = "") {
  return R"({"model": "m", "max_tokens": 8, "system": "Use tools when needed.", )" + extra + R"(
    "tools": [{"name": "get_weather", "description": "Get the current weather in a city", "input_schema":
      {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}],
    "messages": [{"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather",
        "input": {"city": "Paris", "unit": "celsius"}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
        "content": [{"type": "text", "text": "{\"temp\": 18}"}]}]}]})";
}

class ToolHistory : public ::testing::TestWithParam<std::string> {};

// Both APIs' tool history renders through the model's own template exactly as jinja2 rendered the fixture.
TEST_P(ToolHistory, RendersLikeTheFixture) {
  const Json c = fixture_case(GetParam(), "tools");
  std::string expected = c["expected"];
  // The fixture used "<s>" for bos_token; this vocabulary's BOS text is the template's.
  const std::string bos = std::string(tok().token_piece(*tok().bos_id()));
  for (size_t p = 0; (p = expected.find("<s>", p)) != std::string::npos; p += bos.size()) expected.replace(p, 3, bos);
  // This vocabulary adds a BOS token ahead of any template that does not write one.
  if (expected.rfind(bos, 0) != 0) expected.insert(0, bos);
  {
    Fixture f(GetParam());
    auto o = api::openai_chat_completions(f.models(), openai_tool_history_body());
    EXPECT_EQ(f.prompt(), expected);
  }
  {
    Fixture f(GetParam());
    // Thinking enabled sets enable_thinking, which the fixtures left undefined. Qwen3 reads undefined as true,
    // so its prompt is the fixture's; QwQ reads it as false and closes the think block, which true leaves open.
    auto o = api::anthropic_messages(f.models(), anthropic_tool_history_body(R"("thinking": {"type": "enabled", "budget_tokens": 100},)"));
    if (GetParam() == "Qwen-QwQ-32B") {
      ASSERT_EQ(expected.substr(expected.size() - 8), "</think>");
      expected.resize(expected.size() - 8);
    }
    EXPECT_EQ(f.prompt(), expected);
  }
}

// (Llama 3.2's template writes today's date, so its rendering is not the fixture's pinned one.)
INSTANTIATE_TEST_SUITE_P(Templates, ToolHistory,
                         ::testing::Values("Qwen-Qwen2.5-7B-Instruct", "Qwen-Qwen3-0.6B", "Qwen-QwQ-32B",
                                           "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
                                           "meta-llama-Llama-3.1-8B-Instruct",
                                           "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// A Qwen-style call, split mid-marker and mid-JSON across engine pieces, after some text.
const std::vector<std::string> kCallScript = {"Checking", ".\n<tool", "_call>\n{\"name\": \"get_",
                                              "weather\", \"arguments\": {\"city\": ", "\"Paris\"}}\n</tool_",
                                              "call>"};

TEST(ToolCallsOut, OpenAiMessageCarriesTheCall) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct", kCallScript);
  auto o = api::openai_chat_completions(
      f.models(), R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":)" + std::string(kTools) + "}");
  const Json body = Json::parse(run_to_end(generation(o)));
  const Json& choice = body["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["content"], "Checking.");
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  const Json& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>()), Json::parse(R"({"city":"Paris"})"));
  EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
}

TEST(ToolCallsOut, OpenAiStreamSendsNameFirstThenArgumentsAndNoMarkup) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct", kCallScript);
  auto o = api::openai_chat_completions(
      f.models(), R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"tools":)" +
                      std::string(kTools) + "}");
  std::string content, name, arguments, id, finish;
  int heads = 0;
  for (const Json& c : sse_data(run_to_end(generation(o)))) {
    const Json& choice = c["choices"][0];
    const Json& delta = choice["delta"];
    if (delta.contains("content") && delta["content"].is_string()) content += delta["content"].get<std::string>();
    if (delta.contains("tool_calls")) {
      const Json& tc = delta["tool_calls"][0];
      EXPECT_EQ(tc["index"], 0);
      if (tc.contains("id")) {  // the head of a call
        ++heads;
        id = tc["id"];
        name = tc["function"]["name"];
        EXPECT_TRUE(arguments.empty()) << "the name comes before any arguments";
      }
      arguments += tc["function"]["arguments"].get<std::string>();
    }
    if (choice["finish_reason"].is_string()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(content, "Checking.");
  EXPECT_EQ(heads, 1);
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(Json::parse(arguments), Json::parse(R"({"city":"Paris"})"));
  EXPECT_EQ(finish, "tool_calls");
}

TEST(ToolCallsOut, ParallelCallsAndParallelToolCallsFalse) {
  const std::vector<std::string> two = {"<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"A\"}}</tool_call>",
                                        "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"B\"}}</tool_call>"};
  for (bool parallel : {true, false}) {
    Fixture f("Qwen-Qwen3-0.6B", two);
    auto o = api::openai_chat_completions(
        f.models(), R"({"model":"m","messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":)" +
                        std::string(parallel ? "true" : "false") + R"(,"tools":)" + std::string(kTools) + "}");
    const Json message = Json::parse(run_to_end(generation(o)))["choices"][0]["message"];
    ASSERT_EQ(message["tool_calls"].size(), parallel ? 2u : 1u);
    EXPECT_TRUE(message["content"].is_null());
    EXPECT_NE(message["tool_calls"][0]["id"], parallel ? message["tool_calls"][1]["id"] : Json());
  }
}

TEST(ToolCallsOut, ToolChoiceNoneNeitherOffersNorParses) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct", kCallScript);
  auto o = api::openai_chat_completions(
      f.models(), R"({"model":"m","tool_choice":"none","messages":[{"role":"user","content":"hi"}],"tools":)" +
                      std::string(kTools) + "}");
  EXPECT_EQ(f.prompt().find("<tools>"), std::string::npos);
  const Json choice = Json::parse(run_to_end(generation(o)))["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_FALSE(choice["message"].contains("tool_calls"));
  std::string all;
  for (const auto& piece : kCallScript) all += piece;
  EXPECT_EQ(choice["message"]["content"], all);
}

TEST(ToolCallsOut, MalformedCallIsTextNotAnError) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct", {"<tool_call>{\"name\": \"get_weather\", \"arguments\": {oops}}</tool_call>"});
  auto o = api::openai_chat_completions(
      f.models(), R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":)" + std::string(kTools) + "}");
  const Json choice = Json::parse(run_to_end(generation(o)))["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(choice["message"]["content"], f.engine.script[0]);
}

TEST(ToolCallsOut, AnthropicToolUseBlock) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct", kCallScript);
  auto o = api::anthropic_messages(f.models(), anthropic_tool_history_body());
  const Json body = Json::parse(run_to_end(generation(o)));
  EXPECT_EQ(body["stop_reason"], "tool_use");
  ASSERT_EQ(body["content"].size(), 2u);
  EXPECT_EQ(body["content"][0], Json::parse(R"({"type":"text","text":"Checking."})"));
  const Json& use = body["content"][1];
  EXPECT_EQ(use["type"], "tool_use");
  EXPECT_EQ(use["name"], "get_weather");
  EXPECT_EQ(use["input"], Json::parse(R"({"city":"Paris"})"));
  EXPECT_EQ(use["id"].get<std::string>().rfind("toolu_", 0), 0u);
}

TEST(ToolCallsOut, AnthropicStreamBlocks) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct", kCallScript);
  auto o = api::anthropic_messages(f.models(), anthropic_tool_history_body(R"("stream": true,)"));
  std::vector<std::string> sequence;
  std::string text, json;
  for (const Json& e : sse_data(run_to_end(generation(o)))) {
    const std::string type = e["type"];
    if (type == "content_block_start") sequence.push_back("start:" + e["content_block"]["type"].get<std::string>() + ":" + std::to_string(e["index"].get<int>()));
    if (type == "content_block_stop") sequence.push_back("stop:" + std::to_string(e["index"].get<int>()));
    if (type == "content_block_delta" && e["delta"]["type"] == "text_delta") text += e["delta"]["text"].get<std::string>();
    if (type == "content_block_delta" && e["delta"]["type"] == "input_json_delta") json += e["delta"]["partial_json"].get<std::string>();
    if (type == "message_delta") {
      EXPECT_EQ(e["delta"]["stop_reason"], "tool_use");
    }
  }
  EXPECT_EQ(sequence, (std::vector<std::string>{"start:text:0", "stop:0", "start:tool_use:1", "stop:1"}));
  EXPECT_EQ(text, "Checking.");
  EXPECT_EQ(Json::parse(json), Json::parse(R"({"city":"Paris"})"));
}

// A byte-level vocabulary of the 256 bytes plus Mistral's tool-call markers and EOS as control tokens, which
// the engine leaves out of the text it streams.
tokenizer::Tokenizer mistral_like_vocabulary() {
  tokenizer::TokenizerSpec spec;
  for (int b = 0; b < 256; ++b) {
    spec.tokens.emplace_back(tokenizer::byte_level_char(static_cast<uint8_t>(b)));
    spec.kinds.push_back(tokenizer::TokenKind::Normal);
  }
  for (const char* control : {"[TOOL_CALLS]", "[ARGS]", "</s>"}) {
    spec.tokens.emplace_back(control);
    spec.kinds.push_back(tokenizer::TokenKind::Control);
  }
  spec.eos_id = 258;
  return tokenizer::Tokenizer::from_spec(std::move(spec));
}

TEST(ToolCallsOut, MarkersHiddenByTheEngineAreRestoredFromTokenIds) {
  const tokenizer::Tokenizer vocab = mistral_like_vocabulary();
  FakeEngine engine;
  // What the engine streams for "[TOOL_CALLS]get_weather[ARGS]{...}": the control tokens carry no text.
  engine.script = {"", "get_weather", "", "{\"city\": \"Oslo\"}"};
  engine.script_ids = {256, 'g', 257, '{'};
  api::ServedModel model("m", engine, vocab, template_of("Mistral-Small-3.2-24B-Instruct-2506"));
  EXPECT_EQ(model.tool_format(), chat::ToolCallFormat::Mistral);
  const api::ServedModel* models[] = {&model};
  auto o = api::openai_chat_completions(
      models, R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":)" + std::string(kTools) + "}");
  const Json message = Json::parse(run_to_end(generation(o)))["choices"][0]["message"];
  ASSERT_EQ(message["tool_calls"].size(), 1u) << message;
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], R"({"city":"Oslo"})");
  // Mistral templates refuse any other id shape than 9 letters and digits.
  const std::string id = message["tool_calls"][0]["id"];
  EXPECT_EQ(id.size(), 9u);
  EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }));
}

const std::vector<std::string> kThinkScript = {"<th", "ink>\nLet me", " add.\n</thi", "nk>\n\n", "2"};

TEST(Reasoning, OpenAiReasoningContentWholeAndStreamed) {
  {
    Fixture f("Qwen-Qwen3-0.6B", kThinkScript);
    auto o = api::openai_chat_completions(f.models(), R"({"model":"m","messages":[{"role":"user","content":"1+1?"}]})");
    const Json message = Json::parse(run_to_end(generation(o)))["choices"][0]["message"];
    EXPECT_EQ(message["reasoning_content"], "Let me add.");
    EXPECT_EQ(message["content"], "2");
  }
  Fixture f("Qwen-Qwen3-0.6B", kThinkScript);
  auto o = api::openai_chat_completions(f.models(), R"({"model":"m","stream":true,"messages":[{"role":"user","content":"1+1?"}]})");
  std::string reasoning, content;
  for (const Json& c : sse_data(run_to_end(generation(o)))) {
    const Json& d = c["choices"][0]["delta"];
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) content += d["content"].get<std::string>();
  }
  EXPECT_EQ(reasoning, "Let me add.");
  EXPECT_EQ(content, "2");
}

TEST(Reasoning, ChatTemplateKwargsReachTheTemplate) {
  // Qwen3's template closes an empty think block in the generation prompt when enable_thinking is false.
  Fixture f("Qwen-Qwen3-0.6B", {"ok"});
  auto o = api::openai_chat_completions(
      f.models(), R"({"model":"m","chat_template_kwargs":{"enable_thinking":false},"messages":[{"role":"user","content":"x"}]})");
  const std::string p = f.prompt();
  const std::string tail = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
  ASSERT_GE(p.size(), tail.size());
  EXPECT_EQ(p.substr(p.size() - tail.size()), tail);
}

TEST(Reasoning, AnthropicThinkingBlocksOnlyWhenEnabled) {
  const std::string base = R"({"model":"m","max_tokens":9,"messages":[{"role":"user","content":"1+1?"}])";
  {
    Fixture f("Qwen-Qwen3-0.6B", kThinkScript);
    auto o = api::anthropic_messages(f.models(), base + R"(,"thinking":{"type":"enabled","budget_tokens":1024}})");
    const Json body = Json::parse(run_to_end(generation(o)));
    ASSERT_EQ(body["content"].size(), 2u);
    EXPECT_EQ(body["content"][0]["type"], "thinking");
    EXPECT_EQ(body["content"][0]["thinking"], "Let me add.");
    EXPECT_EQ(body["content"][1]["text"], "2");
    EXPECT_EQ(f.prompt().find("</think>"), std::string::npos) << "thinking stays on in the template";
  }
  for (const char* extra : {R"(,"thinking":{"type":"disabled"}})", "}"}) {
    Fixture f("Qwen-Qwen3-0.6B", kThinkScript);
    auto o = api::anthropic_messages(f.models(), base + extra);
    const Json body = Json::parse(run_to_end(generation(o)));
    ASSERT_EQ(body["content"].size(), 1u);
    EXPECT_EQ(body["content"][0]["text"], "2");
    EXPECT_NE(f.prompt().find("<think>\n\n</think>\n\n"), std::string::npos) << "enable_thinking=false in the template";
  }
  {
    Fixture f("Qwen-Qwen3-0.6B", kThinkScript);
    auto o = api::anthropic_messages(f.models(), base + R"(,"stream":true,"thinking":{"type":"enabled","budget_tokens":1024}})");
    std::string thinking;
    std::vector<std::string> blocks;
    for (const Json& e : sse_data(run_to_end(generation(o)))) {
      if (e["type"] == "content_block_start") blocks.push_back(e["content_block"]["type"]);
      if (e["type"] == "content_block_delta" && e["delta"]["type"] == "thinking_delta") thinking += e["delta"]["thinking"].get<std::string>();
    }
    EXPECT_EQ(blocks, (std::vector<std::string>{"thinking", "text"}));
    EXPECT_EQ(thinking, "Let me add.");
  }
}

TEST(AnthropicUsage, CachedTokensAreReadNotInput) {
  for (bool stream : {false, true}) {
    Fixture f("Qwen-Qwen2.5-7B-Instruct", {"a", "b"});
    f.engine.cached_prompt_tokens = 16;
    auto o = api::anthropic_messages(
        f.models(), std::string(R"({"model":"m","max_tokens":5,"stream":)") + (stream ? "true" : "false") +
                        R"(,"messages":[{"role":"user","content":"a long enough prompt for sixteen cached tokens"}]})");
    const int prompt = static_cast<int>(f.engine.last()->request.prompt.size());
    ASSERT_GT(prompt, 16);
    const std::string out = run_to_end(generation(o));
    const Json usage = stream ? sse_data(out).front()["message"]["usage"] : Json::parse(out)["usage"];
    EXPECT_EQ(usage["input_tokens"], prompt - 16);
    EXPECT_EQ(usage["cache_read_input_tokens"], 16);
    EXPECT_EQ(usage["cache_creation_input_tokens"], 0);
  }
}

TEST(AnthropicHistory, ToolResultErrorsAndTextAroundThem) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct", {"ok"});
  auto o = api::anthropic_messages(f.models(), R"({"model":"m","max_tokens":4,"messages":[
      {"role":"user","content":"go"},
      {"role":"assistant","content":[{"type":"text","text":"Calling."},
                                     {"type":"tool_use","id":"t1","name":"get_weather","input":{}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"no city"},
                                {"type":"text","text":"Try Paris."}]}]})");
  const std::string p = f.prompt();
  EXPECT_NE(p.find("<|im_start|>assistant\nCalling.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call><|im_end|>\n"
                   "<|im_start|>user\n<tool_response>\nError: no city\n</tool_response><|im_end|>\n"
                   "<|im_start|>user\nTry Paris.<|im_end|>\n"),
            std::string::npos)
      << p;
}

TEST(BadToolRequests, AreFourHundredsNamingTheField) {
  Fixture f("Qwen-Qwen2.5-7B-Instruct");
  const auto param_of = [&](auto call, const std::string& body) -> std::string {
    try {
      call(f.models(), body);
    } catch (const api::ApiError& e) {
      EXPECT_EQ(api::http_status(e.kind()), 400);
      return e.param();
    }
    return "(no error)";
  };
  EXPECT_EQ(param_of(api::openai_chat_completions,
                     R"({"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f"}}]}]})"),
            "messages[0].tool_calls[0].id");
  EXPECT_EQ(param_of(api::openai_chat_completions,
                     R"({"model":"m","messages":[{"role":"tool","content":"x"}]})"),
            "messages[0].tool_call_id");
  EXPECT_EQ(param_of(api::openai_chat_completions,
                     R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"bad name"}}]})"),
            "tools[0].function.name");
  EXPECT_EQ(param_of(api::anthropic_messages,
                     R"({"model":"m","max_tokens":3,"messages":[{"role":"user","content":[{"type":"tool_use","id":"x","name":"f","input":{}}]}]})"),
            "messages[0].content[0].type");
  EXPECT_EQ(param_of(api::anthropic_messages,
                     R"({"model":"m","max_tokens":3,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"x"}]})"),
            "tools[0].type");
  EXPECT_EQ(param_of(api::anthropic_messages,
                     R"({"model":"m","max_tokens":3,"thinking":{"type":"sometimes"},"messages":[{"role":"user","content":"x"}]})"),
            "thinking.type");
}

TEST(Models, AliasesAndOneModelById) {
  FakeEngine engine;
  api::ServedModel model("first", engine, tok());
  model.add_alias("gpt-4o");
  const api::ServedModel* models[] = {&model};
  const Json list = Json::parse(api::openai_models(models).body);
  ASSERT_EQ(list["data"].size(), 2u);
  EXPECT_EQ(list["data"][1]["id"], "gpt-4o");
  const Json one = Json::parse(api::openai_model(models, "gpt-4o").body);
  EXPECT_EQ(one["id"], "gpt-4o");
  EXPECT_EQ(one["object"], "model");
  try {
    api::openai_model(models, "nope");
    FAIL() << "an unknown model was found";
  } catch (const api::ApiError& e) {
    EXPECT_EQ(api::http_status(e.kind()), 404);
  }
  auto o = api::openai_chat_completions(models, R"({"model":"gpt-4o","max_tokens":1,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_TRUE(std::holds_alternative<std::unique_ptr<api::Generation>>(o));
}

}  // namespace
}  // namespace pensieve::testing
