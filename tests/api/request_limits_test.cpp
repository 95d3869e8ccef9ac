// Hostile request bodies at the adapter level: nesting, key counts and numbers beyond double all end as a 400
// ApiError, never as a crash or a 500.
#include <gtest/gtest.h>

#include "api/anthropic.h"
#include "api/api_error.h"
#include "api/json_fields.h"
#include "api/json_limits.h"
#include "api/openai.h"
#include "fake_engine.h"
#include "fixture_tokenizer.h"

namespace pensieve::testing {
namespace {

const tokenizer::Tokenizer& tok() { return fixture_tokenizer(); }

std::string nested(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

int status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const api::ApiError& e) {
    return api::http_status(e.kind());
  }
  return 200;
}

TEST(JsonLimits, DepthIsCountedOutsideStringsOnly) {
  const api::JsonLimits limits{4, 100};
  EXPECT_NO_THROW(api::check_json_limits(R"({"a":[[{"b":1}]]})", limits));
  EXPECT_THROW(api::check_json_limits(R"({"a":[[[{"b":1}]]]})", limits), api::ApiError);
  // Brackets inside strings, escaped quotes included, are text.
  EXPECT_NO_THROW(api::check_json_limits(R"({"a":"[[[[[[\"[[[[[[{{{{"})", limits));
}

TEST(JsonLimits, KeysPerObjectAreBounded) {
  const api::JsonLimits limits{8, 3};
  EXPECT_NO_THROW(api::check_json_limits(R"({"a":1,"b":{"x":1,"y":2,"z":3},"c":"k:v:w"})", limits));
  EXPECT_THROW(api::check_json_limits(R"({"a":1,"b":2,"c":3,"d":4})", limits), api::ApiError);
  // Colons in arrays are not keys (they cannot be there in valid JSON, but must not count either way).
  EXPECT_NO_THROW(api::check_json_limits(R"({"a":[{"p":1},{"q":2},{"r":3},{"s":4}]})", limits));
}

TEST(JsonLimits, ParseBodyRefusesADeepBodyWithA400) {
  EXPECT_EQ(status_of([] { api::parse_body("{\"x\":" + nested(100000) + "}"); }), 400);
}

TEST(JsonLimits, NumberBeyondDoubleIsA400) {
  EXPECT_EQ(status_of([] { api::parse_body(R"({"temperature": 1e400})"); }), 400);
  EXPECT_EQ(status_of([] { api::parse_body(R"({"a": -1e400})"); }), 400);
}

TEST(JsonLimits, DeepExtraFieldInAMessageOrToolsDoesNotCrashTheAdapters) {
  FakeEngine engine;
  api::ServedModel model("m", engine, tok());
  const api::ServedModel* models[] = {&model};
  // Deeper than the ceiling: refused before parsing.
  const std::string deep = nested(40000);
  const std::string chat_extra =
      R"({"model":"m","messages":[{"role":"user","content":"hi","extra":)" + deep + "}]}";
  EXPECT_EQ(status_of([&] { api::openai_chat_completions(models, chat_extra); }), 400);
  const std::string tools = R"({"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}],"tools":[)" +
                            deep + "]}";
  EXPECT_EQ(status_of([&] { api::anthropic_count_tokens(models, tools); }), 400);
  EXPECT_EQ(status_of([&] { api::anthropic_messages(models, tools); }), 400);
}

}  // namespace
}  // namespace pensieve::testing
