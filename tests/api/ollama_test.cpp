// The Ollama adapter over a scripted engine: NDJSON lines, options reaching the engine request, keep_alive
// durations, the load-only request, model listings and the error shape; and the router's read of "model".
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "adapter_test_support.h"
#include "api/api_error.h"
#include "api/json_fields.h"
#include "api/ollama.h"
#include "fake_engine.h"

namespace pensieve::testing {
namespace {

using nlohmann::json;

std::vector<json> lines_of(const std::string& ndjson) {
  std::vector<json> out;
  size_t start = 0;
  for (size_t end; (end = ndjson.find('\n', start)) != std::string::npos; start = end + 1) {
    out.push_back(json::parse(ndjson.substr(start, end - start)));
  }
  EXPECT_EQ(start, ndjson.size()) << "every line ends with a newline";
  return out;
}

TEST(Ollama, ChatStreamsNdjsonEndingWithDone) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  auto outcome = api::ollama_chat(models, R"({"model":"m","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":3}})");
  auto& gen = *std::get<std::unique_ptr<api::Generation>>(outcome);
  EXPECT_TRUE(gen.streaming()) << "streaming is Ollama's default";
  EXPECT_EQ(gen.stream_content_type(), "application/x-ndjson");
  const std::vector<json> lines = lines_of(run_to_end(gen));
  ASSERT_GE(lines.size(), 2u);
  std::string text;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["done"], false);
    text += lines[i]["message"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, "Hello, world");  // the fake engine's first three pieces
  const json& last = lines.back();
  EXPECT_EQ(last["done"], true);
  EXPECT_EQ(last["done_reason"], "length");
  EXPECT_EQ(last["eval_count"], 3);
  EXPECT_EQ(last["model"], "m");
  for (const char* k : {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_duration"}) {
    EXPECT_TRUE(last.contains(k)) << k;
  }
}

TEST(Ollama, GenerateNotStreamedIsOneObject) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  auto outcome = api::ollama_generate(models, R"({"model":"m","prompt":"hi","stream":false,"options":{"num_predict":2}})");
  const json body = json::parse(run_to_end(*std::get<std::unique_ptr<api::Generation>>(outcome)));
  EXPECT_EQ(body["response"], "Hello,");
  EXPECT_EQ(body["done"], true);
}

TEST(Ollama, OptionsReachTheEngine) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  api::ollama_chat(models, R"({"model":"m","messages":[{"role":"user","content":"hi"}],"options":{
      "temperature":0.3,"top_k":7,"top_p":0.8,"min_p":0.05,"seed":11,"repeat_penalty":1.2,"num_predict":9,
      "stop":["END"],"num_ctx":2048}})");
  const engine::GenerationRequest& r = engine.last()->request;
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.3f);
  EXPECT_EQ(r.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.8f);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_EQ(r.sampling.seed, 11u);
  EXPECT_FLOAT_EQ(r.sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(r.stop.max_tokens, 9);
  EXPECT_EQ(r.stop.stop_strings, std::vector<std::string>{"END"});
}

TEST(Ollama, FormatJsonIsConstrained) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  api::ollama_chat(models, R"({"model":"m","format":"json","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_NE(engine.last()->request.grammar, nullptr);
  EXPECT_THROW(api::ollama_chat(models, R"({"model":"m","format":"yaml","messages":[{"role":"user","content":"hi"}]})"),
               api::ApiError);
}

TEST(Ollama, EmptyPromptOnlyLoadsOrUnloads) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  auto load = api::ollama_generate(models, R"({"model":"m"})");
  EXPECT_EQ(json::parse(std::get<api::Reply>(load).body)["done_reason"], "load");
  auto unload = api::ollama_chat(models, R"({"model":"m","messages":[],"keep_alive":0})");
  EXPECT_EQ(json::parse(std::get<api::Reply>(unload).body)["done_reason"], "unload");
}

TEST(Ollama, KeepAliveDurations) {
  using std::chrono::milliseconds;
  EXPECT_FALSE(api::ollama_keep_alive(R"({"model":"m"})").has_value());
  EXPECT_EQ(api::ollama_keep_alive(R"({"keep_alive":"5m"})")->value(), milliseconds(300000));
  EXPECT_EQ(api::ollama_keep_alive(R"({"keep_alive":"1h30m"})")->value(), milliseconds(5400000));
  EXPECT_EQ(api::ollama_keep_alive(R"({"keep_alive":0})")->value(), milliseconds(0));
  EXPECT_EQ(api::ollama_keep_alive(R"({"keep_alive":"0"})")->value(), milliseconds(0));
  EXPECT_EQ(api::ollama_keep_alive(R"({"keep_alive":2.5})")->value(), milliseconds(2500));
  EXPECT_FALSE(api::ollama_keep_alive(R"({"keep_alive":-1})")->has_value()) << "negative: for ever";
  EXPECT_THROW(api::ollama_keep_alive(R"({"keep_alive":"soon"})"), api::ApiError);
}

TEST(Ollama, TagsShowAndPs) {
  api::ListedModel a;
  a.name = "a";
  a.aliases = {"b"};
  a.facts.architecture = "llama";
  a.facts.parameter_count = 8'030'000'000;
  a.facts.quantization = "Q4_K";
  a.facts.file_bytes = 1234;
  a.facts.chat_template = "{{ messages }}";
  api::ListedModel c = a;
  c.name = "c";
  c.aliases = {};
  c.loaded = true;
  c.resident_bytes = 999;
  const std::vector<api::ListedModel> models = {a, c};
  const json tags = json::parse(api::ollama_tags(models).body);
  ASSERT_EQ(tags["models"].size(), 3u);
  EXPECT_EQ(tags["models"][1]["name"], "b:latest");
  EXPECT_EQ(tags["models"][0]["details"]["parameter_size"], "8.0B");
  EXPECT_EQ(tags["models"][0]["details"]["quantization_level"], "Q4_K");
  const json ps = json::parse(api::ollama_ps(models).body);
  ASSERT_EQ(ps["models"].size(), 1u);
  EXPECT_EQ(ps["models"][0]["name"], "c:latest");
  EXPECT_EQ(ps["models"][0]["size"], 999);
  const json show = json::parse(api::ollama_show(models, R"({"model":"b:latest"})").body);
  EXPECT_EQ(show["template"], "{{ messages }}");
  EXPECT_EQ(show["details"]["family"], "llama");
  try {
    api::ollama_show(models, R"({"model":"zzz"})");
    ADD_FAILURE() << "no such model";
  } catch (const api::ApiError& e) {
    EXPECT_EQ(api::http_status(e.kind()), 404);
    EXPECT_EQ(json::parse(api::ollama_error_body(e)).begin().key(), "error");
  }
}

TEST(RequestedModel, ReadsOnlyTheTopLevelModel) {
  EXPECT_EQ(api::requested_model(R"({"model":"a","messages":[]})"), "a");
  EXPECT_EQ(api::requested_model(R"({"stream":"x","model":"b"})"), "b");
  EXPECT_EQ(api::requested_model(R"({"messages":[{"model":"inner"}],"model":"c"})"), "c");
  EXPECT_EQ(api::requested_model(R"({"options":{"model":"inner"}})"), "");
  EXPECT_EQ(api::requested_model(R"({"model":3})"), "");
  EXPECT_EQ(api::requested_model("not json"), "");
}

}  // namespace
}  // namespace pensieve::testing
