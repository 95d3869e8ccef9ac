// The Anthropic Messages endpoints over a real socket, with the FakeEngine.
#include "test_client.h"

namespace pensieve::testing {
namespace {

json messages_body(json extra = json::object()) {
  json b = {{"model", "tiny"}, {"max_tokens", 100}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

TEST(AnthropicRoutes, MessageObject) {
  ServerHarness h;
  auto r = h.post("/v1/messages", messages_body(), {{"anthropic-version", "2023-06-01"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.body_json();
  EXPECT_EQ(j["type"], "message");
  EXPECT_EQ(j["role"], "assistant");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["id"].get<std::string>().rfind("msg_", 0), 0u);
  ASSERT_EQ(j["content"].size(), 1u);
  EXPECT_EQ(j["content"][0]["type"], "text");
  EXPECT_EQ(j["content"][0]["text"], "Hello, world! How are you?");
  EXPECT_EQ(j["stop_reason"], "end_turn");
  EXPECT_TRUE(j["stop_sequence"].is_null());
  EXPECT_EQ(j["usage"]["input_tokens"], h.engine.last()->request.prompt.size());
  EXPECT_EQ(j["usage"]["output_tokens"], 8);
}

TEST(AnthropicRoutes, StopReasons) {
  ServerHarness h;
  auto j = h.post("/v1/messages", messages_body({{"max_tokens", 2}})).body_json();
  EXPECT_EQ(j["stop_reason"], "max_tokens");
  EXPECT_EQ(j["content"][0]["text"], "Hello,");
  j = h.post("/v1/messages", messages_body({{"stop_sequences", {" world"}}})).body_json();
  EXPECT_EQ(j["stop_reason"], "stop_sequence");
  EXPECT_EQ(j["stop_sequence"], " world");
  EXPECT_EQ(j["content"][0]["text"], "Hello,");
}

TEST(AnthropicRoutes, FieldsReachTheEngineAndSystemBlocksAreRendered) {
  ServerHarness h;
  auto r = h.post("/v1/messages", messages_body({{"temperature", 0.25}, {"top_p", 0.5}, {"top_k", 9},
                                                 {"metadata", {{"user_id", "u"}}}, {"ignore_eos", true},
                                                 {"system", {{{"type", "text"}, {"text", "Be brief."}}}},
                                                 {"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Q1"}}}}},
                                                               {{"role", "assistant"}, {"content", "A1"}},
                                                               {{"role", "user"}, {"content", "Q2"}}}}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& q = h.engine.last()->request;
  EXPECT_FLOAT_EQ(q.sampling.temperature, 0.25f);
  EXPECT_FLOAT_EQ(q.sampling.top_p, 0.5f);
  EXPECT_EQ(q.sampling.top_k, 9);
  EXPECT_TRUE(q.stop.ignore_eos);
  EXPECT_EQ(q.stop.max_tokens, 100);
  const std::string prompt = fixture_tokenizer().decode(q.prompt, true);
  const size_t sys = prompt.find("Be brief."), q1 = prompt.find("Q1"), a1 = prompt.find("A1"), q2 = prompt.find("Q2");
  ASSERT_NE(sys, std::string::npos) << prompt;
  ASSERT_NE(q2, std::string::npos) << prompt;
  EXPECT_LT(sys, q1);
  EXPECT_LT(q1, a1);
  EXPECT_LT(a1, q2);
}

TEST(AnthropicRoutes, StreamHasTheExactEventSequence) {
  ServerHarness h;
  auto r = h.post("/v1/messages", messages_body({{"stream", true}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  std::vector<std::string> expected = {"message_start", "content_block_start", "ping"};
  for (int i = 0; i < 8; ++i) expected.push_back("content_block_delta");
  expected.insert(expected.end(), {"content_block_stop", "message_delta", "message_stop"});
  EXPECT_EQ(sse_events(r.body), expected);
  auto data = sse_data(r.body);
  ASSERT_EQ(data.size(), expected.size());
  std::string text;
  for (size_t i = 0; i < data.size(); ++i) {
    auto j = json::parse(data[i]);
    EXPECT_EQ(j["type"], expected[i]);
    if (expected[i] == "content_block_delta") {
      EXPECT_EQ(j["delta"]["type"], "text_delta");
      text += j["delta"]["text"].get<std::string>();
    }
  }
  EXPECT_EQ(text, "Hello, world! How are you?");
  auto start = json::parse(data[0]);
  EXPECT_EQ(start["message"]["usage"]["input_tokens"], h.engine.last()->request.prompt.size());
  auto delta = json::parse(data[data.size() - 2]);
  EXPECT_EQ(delta["delta"]["stop_reason"], "end_turn");
  EXPECT_EQ(delta["usage"]["output_tokens"], 8);
}

TEST(AnthropicRoutes, ErrorsHaveAnthropicsShape) {
  ServerHarness h;
  json b = messages_body();
  b.erase("max_tokens");
  auto r = h.post("/v1/messages", b);
  EXPECT_EQ(r.status, 400);
  auto j = r.body_json();
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("max_tokens"), std::string::npos);
  b = messages_body();
  b["messages"][0]["role"] = "system";
  r = h.post("/v1/messages", b);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body_json()["error"]["message"].get<std::string>().find("messages[0].role"), std::string::npos);
  r = h.request("POST", "/v1/messages", "not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body_json()["type"], "error");
}

TEST(AnthropicRoutes, CountTokensMatchesThePromptTheEngineGets) {
  ServerHarness h;
  json b = messages_body({{"system", "You are terse."}});
  auto count = h.post("/v1/messages/count_tokens", b);
  ASSERT_EQ(count.status, 200) << count.body;
  ASSERT_EQ(h.post("/v1/messages", b).status, 200);
  EXPECT_EQ(count.body_json()["input_tokens"], h.engine.last()->request.prompt.size());
  EXPECT_GT(count.body_json()["input_tokens"].get<int>(), 3);
}

}  // namespace
}  // namespace pensieve::testing
