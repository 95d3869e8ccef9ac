// Bad requests get a 4xx naming what is wrong, in the shape of the API the route belongs to.
#include "test_client.h"

namespace pensieve::testing {
namespace {

json chat_body() { return {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}}; }

void expect_openai_error(const HttpResult& r, int status, const std::string& param) {
  EXPECT_EQ(r.status, status) << r.body;
  auto j = r.body_json();
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  if (param.empty()) {
    EXPECT_TRUE(j["error"]["param"].is_null()) << r.body;
  } else {
    EXPECT_EQ(j["error"]["param"], param) << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(param), std::string::npos) << r.body;
  }
}

TEST(Errors, MalformedJson) {
  ServerHarness h;
  auto r = h.request("POST", "/v1/chat/completions", "{\"model\": \"tiny\", ");
  expect_openai_error(r, 400, "");
  EXPECT_EQ(r.body_json()["error"]["type"], "invalid_request_error");
  expect_openai_error(h.request("POST", "/v1/chat/completions", "[1,2]"), 400, "");
}

TEST(Errors, MissingAndMistypedFieldsAreNamed) {
  ServerHarness h;
  json b = chat_body();
  b.erase("messages");
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "messages");
  b = chat_body();
  b["temperature"] = "hot";
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "temperature");
  b = chat_body();
  b["temperature"] = 7;
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "temperature");
  b = chat_body();
  b["messages"][0]["content"] = 42;
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "messages[0].content");
  b = chat_body();
  b["messages"][0]["role"] = "wizard";
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "messages[0].role");
  b = chat_body();
  b["messages"][0]["content"] = {{{"type", "image_url"}, {"image_url", {{"url", "x"}}}}};
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "messages[0].content[0].type");
  b = chat_body();
  b["max_tokens"] = -1;
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "max_tokens");
  b = chat_body();
  b["stop"] = {"a", 3};
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "stop[1]");
  b = chat_body();
  b["logit_bias"] = {{"notatoken", 1}};
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "logit_bias.notatoken");
  b = chat_body();
  b.erase("model");
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "model");
  expect_openai_error(h.post("/v1/completions", {{"model", "tiny"}, {"prompt", {1, 99999}}}), 400, "prompt[1]");
  EXPECT_TRUE(h.engine.submitted().empty());
}

TEST(Errors, UnknownResponseFormatsAndUnenforceableSchemasAreRefused) {
  ServerHarness h;
  json b = chat_body();
  b["response_format"] = {{"type", "xml"}};
  expect_openai_error(h.post("/v1/chat/completions", b), 400, "response_format.type");
  b["response_format"] = {{"type", "json_schema"},
                          {"json_schema", {{"name", "x"}, {"schema", {{"type", "string"}, {"pattern", "^a"}}}}}};
  const auto r = h.post("/v1/chat/completions", b);
  expect_openai_error(r, 400, "response_format.json_schema.schema");
  EXPECT_NE(r.body.find("pattern"), std::string::npos) << r.body;  // the keyword at fault
  b["response_format"] = {{"type", "text"}};
  EXPECT_EQ(h.post("/v1/chat/completions", b).status, 200);
  b["response_format"] = {{"type", "json_object"}};  // refused before constrained decoding; enforced now
  EXPECT_EQ(h.post("/v1/chat/completions", b).status, 200);
}

TEST(Errors, UnknownModelIs404) {
  ServerHarness h;
  json b = chat_body();
  b["model"] = "gpt-17";
  auto r = h.post("/v1/chat/completions", b);
  expect_openai_error(r, 404, "model");
  EXPECT_EQ(r.body_json()["error"]["code"], "model_not_found");
  auto a = h.post("/v1/messages", {{"model", "nope"}, {"max_tokens", 5}, {"messages", {{{"role", "user"}, {"content", "x"}}}}});
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body_json()["type"], "error");
  EXPECT_EQ(a.body_json()["error"]["type"], "not_found_error");
}

TEST(Errors, UnknownRouteAndWrongMethod) {
  ServerHarness h;
  EXPECT_EQ(h.request("GET", "/v1/nothing").status, 404);
  EXPECT_EQ(h.request("GET", "/v1/chat/completions").status, 405);
  EXPECT_EQ(h.request("GET", "/nothing").status, 404);
  EXPECT_EQ(h.request("GET", "/assets/nothing.js").status, 404);
  EXPECT_EQ(h.request("GET", "/").status, 200);  // the web page
  EXPECT_EQ(h.request("DELETE", "/").status, 405);
}

TEST(Errors, ApiKeyIsRequiredWhenSet) {
  http::ServerOptions o;
  o.api_keys = {"sekrit"};
  ServerHarness h(o);
  const json b = chat_body();
  auto none = h.post("/v1/chat/completions", b);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body_json()["error"]["code"], "invalid_api_key");
  EXPECT_EQ(h.post("/v1/chat/completions", b, {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(h.post("/v1/chat/completions", b, {{"Authorization", "Bearer sekrit"}}).status, 200);
  EXPECT_EQ(h.post("/v1/chat/completions", b, {{"x-api-key", "sekrit"}}).status, 200);
  auto anthropic = h.post("/v1/messages", {{"model", "tiny"}});
  EXPECT_EQ(anthropic.status, 401);
  EXPECT_EQ(anthropic.body_json()["error"]["type"], "authentication_error");
  EXPECT_EQ(h.request("GET", "/health").status, 200);  // probes need no key
}

TEST(Errors, QueueFullIs429WithRetryAfter) {
  ServerHarness h;
  h.engine.refuse = engine::SubmitRefused::Why::QueueFull;
  auto r = h.post("/v1/chat/completions", chat_body());
  EXPECT_EQ(r.status, 429);
  EXPECT_FALSE(r.headers["retry-after"].empty());
  auto a = h.post("/v1/messages", {{"model", "tiny"}, {"max_tokens", 5}, {"messages", {{{"role", "user"}, {"content", "x"}}}}});
  EXPECT_EQ(a.status, 429);
  EXPECT_EQ(a.body_json()["error"]["type"], "overloaded_error");
  EXPECT_FALSE(a.headers["retry-after"].empty());
}

TEST(Errors, PromptLongerThanTheContextIs400) {
  ServerHarness h;
  std::vector<int> ids(5000, 1);  // the fake engine's context is 4096
  expect_openai_error(h.post("/v1/completions", {{"model", "tiny"}, {"prompt", ids}}), 400, "prompt");
}

TEST(Errors, BodyTooLargeIs413) {
  http::ServerOptions o;
  o.max_body_bytes = 1000;
  ServerHarness h(o);
  json b = chat_body();
  b["messages"][0]["content"] = std::string(5000, 'x');
  EXPECT_EQ(h.post("/v1/chat/completions", b).status, 413);
  EXPECT_EQ(h.request("GET", "/health").status, 200);
}

TEST(Errors, GarbageOnTheWireGets400AndTheServerLives) {
  ServerHarness h;
  {
    Connection c(h.port());
    asio::write(c.socket(), asio::buffer(std::string("THIS IS NOT HTTP\r\n\r\n")));
    boost::beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    boost::system::error_code ec;
    bhttp::read(c.socket(), buf, res, ec);
    EXPECT_EQ(res.result_int(), 400u);
  }
  {
    Connection c(h.port());
    asio::write(c.socket(), asio::buffer(std::string(20000, 'A')));  // a header line longer than the limit
    boost::beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    boost::system::error_code ec;
    bhttp::read(c.socket(), buf, res, ec);
    EXPECT_GE(res.result_int(), 400u);
  }
  EXPECT_EQ(h.request("GET", "/health").status, 200);
}

TEST(Errors, HealthIs503UntilTheModelIsAttached) {
  ServerHarness h({}, /*attach_models=*/false);
  EXPECT_EQ(h.request("GET", "/health").status, 503);
  EXPECT_EQ(h.post("/v1/chat/completions", chat_body()).status, 503);
  h.attach();
  for (int i = 0; i < 100 && h.request("GET", "/health").status != 200; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(h.request("GET", "/health").status, 200);
}

}  // namespace
}  // namespace pensieve::testing
