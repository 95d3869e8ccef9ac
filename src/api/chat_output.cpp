#include "api/chat_output.h"

#include <random>

namespace pensieve::api {

chat::OutputOptions output_options(const ServedModel& model, const Json& tools, bool opens_reasoning) {
  chat::OutputOptions o;
  o.reasoning = model.reasons();
  o.starts_in_reasoning = opens_reasoning;
  o.tools = tools.is_array() && !tools.empty();
  o.format = model.tool_format();
  if (o.tools) {
    for (const Json& t : tools) {
      const Json& fn = t.contains("function") ? t["function"] : t;
      if (fn.is_object() && fn.contains("name") && fn["name"].is_string()) o.tool_names.push_back(fn["name"]);
    }
  }
  return o;
}

ChatOutput::ChatOutput(const ServedModel& model, const chat::OutputOptions& options)
    : model_(model), parser_(options) {}

void ChatOutput::push(const engine::GenerationEvent& e, std::vector<chat::OutputPiece>& out) {
  // A hidden marker is put before the event's text: events carry one sampled token, whose text the marker is.
  const std::string markers = model_.hidden_markers(e.tokens);
  if (!markers.empty()) parser_.push(markers, out);
  if (!e.text.empty()) parser_.push(e.text, out);
  if (e.finish) parser_.finish(out);
}

std::string make_tool_call_id(const ServedModel& model, std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const bool mistral = model.tool_format() == chat::ToolCallFormat::Mistral;
  std::string id = mistral ? std::string() : std::string(prefix);
  for (int i = 0, n = mistral ? 9 : 24; i < n; ++i) id.push_back(kAlnum[rng() % 62]);
  return id;
}

}  // namespace pensieve::api
