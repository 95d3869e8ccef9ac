// The OpenAI endpoints over a real socket, with the FakeEngine scripting "Hello, world! How are you?".
#include "test_client.h"

namespace pensieve::testing {
namespace {

const std::string kScriptText = "Hello, world! How are you?";

json chat_body(json extra = json::object()) {
  json b = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "Hi there"}}}}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

TEST(OpenAiRoutes, ListsTheServedModel) {
  ServerHarness h;
  auto r = h.request("GET", "/v1/models");
  ASSERT_EQ(r.status, 200);
  auto j = r.body_json();
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(j["data"][0]["object"], "model");
}

TEST(OpenAiRoutes, ChatCompletionCollectsTheWholeAnswer) {
  ServerHarness h;
  auto r = h.post("/v1/chat/completions", chat_body());
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.body_json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], kScriptText);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  const auto submitted = h.engine.last();
  ASSERT_TRUE(submitted);
  EXPECT_EQ(j["usage"]["prompt_tokens"], submitted->request.prompt.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["usage"]["total_tokens"], submitted->request.prompt.size() + 8);
}

TEST(OpenAiRoutes, PromptIsTheRenderedTemplateTokenized) {
  ServerHarness h;
  auto r = h.post("/v1/chat/completions", chat_body());
  ASSERT_EQ(r.status, 200);
  // Independent of the adapter: render the model's own template (ChatML when it has none) and tokenize.
  const auto& tok = fixture_tokenizer();
  auto choice = chat::choose_template(tok.chat_template().empty() ? std::nullopt : std::optional(tok.chat_template()));
  chat::ChatTemplate t(choice.source);
  nlohmann::ordered_json ctx = {{"messages", {{{"role", "user"}, {"content", "Hi there"}}}},
                                {"add_generation_prompt", true},
                                {"bos_token", tok.bos_id() ? std::string(tok.token_piece(*tok.bos_id())) : ""},
                                {"eos_token", tok.eos_id() ? std::string(tok.token_piece(*tok.eos_id())) : ""}};
  auto expected = tok.encode(t.render(ctx), true, false);
  if (tok.adds_bos() && tok.bos_id() && (expected.empty() || expected[0] != *tok.bos_id())) {
    expected.insert(expected.begin(), *tok.bos_id());
  }
  EXPECT_EQ(h.engine.last()->request.prompt, expected);
}

TEST(OpenAiRoutes, StreamSendsRoleFirstThenDeltasThenDone) {
  ServerHarness h;
  auto r = h.post("/v1/chat/completions", chat_body({{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  auto data = sse_data(r.body);
  ASSERT_GE(data.size(), 4u);
  EXPECT_EQ(data.back(), "[DONE]");
  auto first = json::parse(data[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  int finishes = 0;
  std::string id = first["id"];
  for (size_t i = 0; i + 2 < data.size(); ++i) {
    auto c = json::parse(data[i]);
    EXPECT_EQ(c["id"], id);
    ASSERT_EQ(c["choices"].size(), 1u);
    if (c["choices"][0]["delta"].contains("content")) text += c["choices"][0]["delta"]["content"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) {
      ++finishes;
      EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
    }
    EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
  }
  EXPECT_EQ(text, kScriptText);
  EXPECT_EQ(finishes, 1);
  auto usage_chunk = json::parse(data[data.size() - 2]);
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 8);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], h.engine.last()->request.prompt.size());
}

TEST(OpenAiRoutes, SamplingFieldsReachTheEngine) {
  ServerHarness h;
  auto r = h.post("/v1/chat/completions",
                  chat_body({{"temperature", 0.5}, {"top_p", 0.9}, {"top_k", 40}, {"min_p", 0.05}, {"seed", 1234},
                             {"max_tokens", 7}, {"stop", {"END", "STOP"}}, {"presence_penalty", 0.5},
                             {"frequency_penalty", -0.5}, {"logit_bias", {{"17", -100}}}, {"ignore_eos", true},
                             {"user", "u1"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& q = h.engine.last()->request;
  EXPECT_FLOAT_EQ(q.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(q.sampling.top_p, 0.9f);
  EXPECT_EQ(q.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(q.sampling.min_p, 0.05f);
  EXPECT_EQ(q.sampling.seed, std::optional<uint64_t>(1234));
  EXPECT_EQ(q.stop.max_tokens, 7);
  EXPECT_EQ(q.stop.stop_strings, (std::vector<std::string>{"END", "STOP"}));
  EXPECT_FLOAT_EQ(q.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(q.sampling.frequency_penalty, -0.5f);
  ASSERT_EQ(q.sampling.logit_bias.size(), 1u);
  EXPECT_EQ(q.sampling.logit_bias[0].first, 17);
  EXPECT_FLOAT_EQ(q.sampling.logit_bias[0].second, -100.0f);
  EXPECT_TRUE(q.stop.ignore_eos);
  EXPECT_EQ(q.sampling.top_logprobs, -1);
}

TEST(OpenAiRoutes, MaxTokensEndsWithLength) {
  ServerHarness h;
  auto j = h.post("/v1/chat/completions", chat_body({{"max_completion_tokens", 3}})).body_json();
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello, world");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
}

TEST(OpenAiRoutes, StopStringEndsWithStop) {
  ServerHarness h;
  auto j = h.post("/v1/chat/completions", chat_body({{"stop", " world"}})).body_json();
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello,");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

TEST(OpenAiRoutes, SeveralChoices) {
  ServerHarness h;
  auto j = h.post("/v1/chat/completions", chat_body({{"n", 2}, {"max_tokens", 2}})).body_json();
  ASSERT_EQ(j["choices"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(j["choices"][i]["index"], i);
    EXPECT_EQ(j["choices"][i]["message"]["content"], "Hello,");
  }
  EXPECT_EQ(h.engine.last()->request.n, 2);
}

TEST(OpenAiRoutes, LogprobsCarryTokensAndAlternatives) {
  ServerHarness h;
  auto j = h.post("/v1/chat/completions", chat_body({{"logprobs", true}, {"top_logprobs", 2}, {"max_tokens", 3}})).body_json();
  EXPECT_EQ(h.engine.last()->request.sampling.top_logprobs, 2);
  const auto& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  // "bytes" carries the token's exact bytes even where they are not valid UTF-8 on their own.
  auto bytes_of = [](std::string_view piece) {
    json b = json::array();
    for (unsigned char c : piece) b.push_back(int(c));
    return b;
  };
  EXPECT_EQ(content[0]["bytes"], bytes_of(fixture_tokenizer().token_piece(100)));
  EXPECT_FLOAT_EQ(content[0]["logprob"].get<float>(), -0.25f);
  ASSERT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["bytes"], bytes_of(fixture_tokenizer().token_piece(201)));
}

TEST(OpenAiRoutes, CompletionsTakeTokenIds) {
  ServerHarness h;
  auto r = h.post("/v1/completions", {{"model", "tiny"}, {"prompt", {5, 6, 7}}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.body_json();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "Hello,");
  EXPECT_EQ(h.engine.last()->request.prompt, (std::vector<int32_t>{5, 6, 7}));
}

TEST(OpenAiRoutes, CompletionsStream) {
  ServerHarness h;
  auto r = h.post("/v1/completions", {{"model", "tiny"}, {"prompt", "Once upon"}, {"stream", true}});
  ASSERT_EQ(r.status, 200);
  auto data = sse_data(r.body);
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < data.size(); ++i) text += json::parse(data[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, kScriptText);
  EXPECT_EQ(h.engine.last()->request.prompt, fixture_tokenizer().encode("Once upon", true, true));
}

TEST(OpenAiRoutes, EngineFailureMidStreamIsReported) {
  ServerHarness h;
  h.engine.fail_after = 2;
  auto r = h.post("/v1/chat/completions", chat_body({{"stream", true}}));
  auto data = sse_data(r.body);
  ASSERT_GE(data.size(), 2u);
  EXPECT_EQ(data.back(), "[DONE]");
  auto err = json::parse(data[data.size() - 2]);
  EXPECT_EQ(err["error"]["message"], "scripted failure");
  auto plain = h.post("/v1/chat/completions", chat_body());
  EXPECT_EQ(plain.status, 500);
  EXPECT_EQ(plain.body_json()["error"]["type"], "server_error");
}

}  // namespace
}  // namespace pensieve::testing
