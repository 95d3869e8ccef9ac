// libFuzzer target: the OpenAI and Anthropic request adapters. A body goes to every generating route; each
// must produce an engine request (or a reply) or throw ApiError: no crash, no other exception. The engine is a
// stub that accepts everything and ends each request at once, so the response shapers run too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/anthropic.h"
#include "api/api_error.h"
#include "api/json_limits.h"
#include "api/openai.h"
#include "api/served_model.h"
#include "stub_engine.h"

namespace {

using namespace pensieve;
using fuzzing::served;

void finish(api::Outcome& outcome) {
  auto* gen = std::get_if<std::unique_ptr<api::Generation>>(&outcome);
  if (!gen) return;
  api::Generation& g = **gen;
  std::vector<engine::GenerationEvent> events;
  g.handle().drain(events);
  if (g.streaming()) {
    (void)g.stream_open();
    (void)g.stream_events(events);
    (void)g.stream_close();
  } else {
    g.collect(events);
    (void)g.reply();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const api::ServedModel* models[] = {&served().model};
  using Route = api::Outcome (*)(std::span<const api::ServedModel* const>, std::string_view);
  static const Route routes[] = {
      api::openai_chat_completions, api::openai_completions, api::anthropic_messages,
      [](std::span<const api::ServedModel* const> m, std::string_view b) -> api::Outcome {
        return api::anthropic_count_tokens(m, b);
      }};
  for (Route route : routes) {
    try {
      api::check_json_limits(body, api::JsonLimits{});  // as the server does first
      api::Outcome outcome = route(models, body);
      finish(outcome);
    } catch (const api::ApiError&) {
    }
  }
  return 0;
}
