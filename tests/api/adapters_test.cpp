// The adapters without a socket: bodies in, engine requests and response bytes out.
#include <gtest/gtest.h>

#include "api/anthropic.h"
#include "api/api_error.h"
#include "api/json_fields.h"
#include "api/openai.h"
#include "fake_engine.h"
#include "fixture_tokenizer.h"

namespace pensieve::testing {
namespace {

using api::Json;

const tokenizer::Tokenizer& tok() { return fixture_tokenizer(); }

std::string run_to_end(api::Generation& g) {
  std::string out = g.streaming() ? g.stream_open() : "";
  std::vector<engine::GenerationEvent> events;
  for (;;) {
    events.clear();
    const bool more = g.handle().drain(events);
    if (g.streaming()) out += g.stream_events(events);
    else g.collect(events);
    if (!more) break;
    if (events.empty()) g.handle().wait(std::chrono::milliseconds(50));
  }
  return g.streaming() ? out + g.stream_close() : g.reply().body;
}

TEST(Fields, ReadsTypesAndNamesTheFieldOnError) {
  const Json j = Json::parse(R"({"a": 1, "b": 2.5, "c": "x", "d": true, "e": null, "f": 3.0})");
  api::Fields f(j, "root");
  EXPECT_EQ(f.integer("a", 0, 10), 1);
  EXPECT_EQ(f.integer("f", 0, 10), 3);
  EXPECT_EQ(f.number("b", 0, 10), 2.5);
  EXPECT_EQ(f.string("c"), "x");
  EXPECT_EQ(f.boolean("d"), true);
  EXPECT_FALSE(f.string("e").has_value());
  EXPECT_FALSE(f.string("missing").has_value());
  try {
    f.integer("b", 0, 10);
    FAIL() << "2.5 read as an integer";
  } catch (const api::ApiError& e) {
    EXPECT_EQ(e.param(), "root.b");
    EXPECT_EQ(api::http_status(e.kind()), 400);
  }
  EXPECT_THROW(f.integer("a", 5, 10), api::ApiError);
  EXPECT_THROW(f.string("a"), api::ApiError);
  EXPECT_THROW(api::parse_body("{"), api::ApiError);
  EXPECT_THROW(api::parse_body("3"), api::ApiError);
}

TEST(ErrorBodies, OpenAiAndAnthropicShapes) {
  api::ApiError e(api::ErrorKind::InvalidRequest, "'x' is required", "x");
  const Json o = Json::parse(api::openai_error_body(e));
  EXPECT_EQ(o["error"]["message"], "'x' is required");
  EXPECT_EQ(o["error"]["type"], "invalid_request_error");
  EXPECT_EQ(o["error"]["param"], "x");
  EXPECT_TRUE(o["error"]["code"].is_null());
  const Json a = Json::parse(api::anthropic_error_body(api::ApiError(api::ErrorKind::Overloaded, "busy")));
  EXPECT_EQ(a["type"], "error");
  EXPECT_EQ(a["error"]["type"], "overloaded_error");
  EXPECT_EQ(a["error"]["message"], "busy");
}

TEST(Adapters, ChatStreamBytesAreSseChunks) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  auto outcome = api::openai_chat_completions(
      models, R"({"model":"m","stream":true,"max_tokens":2,"messages":[{"role":"user","content":"hi"}]})");
  auto& gen = *std::get<std::unique_ptr<api::Generation>>(outcome);
  const std::string bytes = run_to_end(gen);
  // role chunk, "Hello", ",", finish chunk, [DONE]: each an SSE event of one data line.
  size_t events = 0;
  for (size_t p = 0; (p = bytes.find("data: ", p)) != std::string::npos; ++p) ++events;
  EXPECT_EQ(events, 5u) << bytes;
  EXPECT_EQ(bytes.substr(bytes.size() - 14), "data: [DONE]\n\n");
}

TEST(Adapters, ContentPartsAreJoinedForTheTemplate) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  auto outcome = api::openai_chat_completions(
      models, R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"alpha"},{"type":"text","text":"beta"}]}]})");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<api::Generation>>(outcome));
  const std::string prompt = tok().decode(engine.last()->request.prompt, true);
  EXPECT_NE(prompt.find("alpha\nbeta"), std::string::npos) << prompt;
}

TEST(Adapters, AnthropicNonStreamingBody) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  auto outcome = api::anthropic_messages(
      models, R"({"model":"m","max_tokens":3,"messages":[{"role":"user","content":"hi"}]})");
  const Json body = Json::parse(run_to_end(*std::get<std::unique_ptr<api::Generation>>(outcome)));
  EXPECT_EQ(body["content"][0]["text"], "Hello, world");
  EXPECT_EQ(body["stop_reason"], "max_tokens");
  EXPECT_EQ(body["usage"]["output_tokens"], 3);
}

}  // namespace
}  // namespace pensieve::testing
