#include "api/anthropic.h"

#include <limits>

#include "api/api_error.h"
#include "api/sampling_fields.h"

namespace pensieve::api {
namespace {

using engine::FinishReason;
using engine::GenerationEvent;

// A string, or an array of text blocks joined by "\n"; anything else names the field.
std::string text_of(const Json& content, const std::string& path) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw invalid_field(path, "must be a string or an array of text blocks, not " + type_name(content));
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string block_path = path + "[" + std::to_string(i) + "]";
    Fields block(content[i], block_path);
    const std::string type = block.required_string("type");
    if (type != "text") throw invalid_field(block_path + ".type", "'" + type + "' is not supported; only text blocks are");
    if (i) text += "\n";
    text += block.required_string("text");
  }
  return text;
}

// System prompt + messages in the chat template's shape.
Json template_messages(const Fields& body) {
  Json out = Json::array();
  if (const Json* system = body.get("system")) {
    out.push_back({{"role", "system"}, {"content", text_of(*system, "system")}});
  }
  const Json& messages = body.required_array("messages");
  if (messages.empty()) throw invalid_field("messages", "must hold at least one message");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string path = "messages[" + std::to_string(i) + "]";
    Fields m(messages[i], path);
    const std::string role = m.required_string("role");
    if (role != "user" && role != "assistant") {
      throw invalid_field(path + ".role", "must be 'user' or 'assistant' (got '" + role + "')");
    }
    const Json* content = m.get("content");
    if (!content) throw invalid_field(path + ".content", "is required");
    out.push_back({{"role", role}, {"content", text_of(*content, path + ".content")}});
  }
  return out;
}

std::vector<int32_t> prompt_of(const Fields& body, const ServedModel& model) {
  Json tools = nullptr;
  if (const Json* t = body.array("tools"); t && !t->empty()) tools = *t;
  return model.chat_prompt(template_messages(body), tools);
}

std::string event(const char* name, const Json& data) {
  return std::string("event: ") + name + "\ndata: " + dump_json(data) + "\n\n";
}

class AnthropicGeneration final : public Generation {
 public:
  AnthropicGeneration(std::shared_ptr<engine::RequestHandle> handle, const ServedModel& model, bool stream,
                      int input_tokens)
      : Generation(std::move(handle), stream),
        id_(make_response_id("msg_")),
        model_(model.id()),
        input_tokens_(input_tokens) {}

  std::string stream_open() override {
    Json message = {{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"content", Json::array()},
                    {"model", model_}, {"stop_reason", nullptr}, {"stop_sequence", nullptr},
                    {"usage", {{"input_tokens", input_tokens_}, {"output_tokens", 0}}}};
    return event("message_start", {{"type", "message_start"}, {"message", message}}) +
           event("content_block_start",
                 {{"type", "content_block_start"}, {"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}}) +
           event("ping", {{"type", "ping"}});
  }

  std::string stream_events(std::span<const GenerationEvent> events) override {
    std::string out;
    for (const GenerationEvent& e : events) {
      if (e.choice != 0) continue;
      if (!e.text.empty()) {
        out += event("content_block_delta", {{"type", "content_block_delta"}, {"index", 0},
                                             {"delta", {{"type", "text_delta"}, {"text", e.text}}}});
      }
      if (const char* err = finish_error_text(e)) {
        error_ = err;
        out += event("error", {{"type", "error"}, {"error", {{"type", "api_error"}, {"message", err}}}});
      } else if (e.finish) {
        set_stop(e);
      }
    }
    return out;
  }

  std::string stream_close() override {
    if (!error_.empty()) return {};
    const engine::Usage u = handle().usage();
    return event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}) +
           event("message_delta", {{"type", "message_delta"},
                                   {"delta", {{"stop_reason", stop_reason_}, {"stop_sequence", stop_sequence_}}},
                                   {"usage", {{"output_tokens", u.completion_tokens}}}}) +
           event("message_stop", {{"type", "message_stop"}});
  }

  void collect(std::span<const GenerationEvent> events) override {
    for (const GenerationEvent& e : events) {
      if (e.choice != 0) continue;
      text_ += e.text;
      if (const char* err = finish_error_text(e)) error_ = err;
      else if (e.finish) set_stop(e);
    }
  }

  Reply reply() override {
    if (!error_.empty()) return Reply{500, anthropic_error_body(ApiError(ErrorKind::Internal, error_)), "application/json", {}};
    const engine::Usage u = handle().usage();
    Json body = {{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"model", model_},
                 {"content", Json::array({{{"type", "text"}, {"text", text_}}})},
                 {"stop_reason", stop_reason_}, {"stop_sequence", stop_sequence_},
                 {"usage", {{"input_tokens", u.prompt_tokens}, {"output_tokens", u.completion_tokens},
                            {"cache_read_input_tokens", u.cached_prompt_tokens}}}};
    return Reply{200, dump_json(body), "application/json", {}};
  }

 private:
  void set_stop(const GenerationEvent& e) {
    if (*e.finish == FinishReason::Length) {
      stop_reason_ = "max_tokens";
    } else if (!e.matched_stop.empty()) {
      stop_reason_ = "stop_sequence";
      stop_sequence_ = e.matched_stop;
    } else {
      stop_reason_ = "end_turn";
    }
  }

  std::string id_;
  std::string model_;
  int input_tokens_;
  std::string text_;
  std::string error_;
  Json stop_reason_ = "end_turn";
  Json stop_sequence_ = nullptr;
};

}  // namespace

Outcome anthropic_messages(std::span<const ServedModel* const> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  const ServedModel& model = pick_model(models, body);
  const auto max_tokens = body.integer("max_tokens", 1, std::numeric_limits<int32_t>::max());
  if (!max_tokens) throw invalid_field("max_tokens", "is required");
  engine::GenerationRequest r;
  r.prompt = prompt_of(body, model);
  if (auto v = body.number("temperature", 0.0, 1.0)) r.sampling.temperature = static_cast<float>(*v);
  if (auto v = body.number("top_p", 0.0, 1.0)) r.sampling.top_p = static_cast<float>(*v);
  if (auto v = body.integer("top_k", 0, model.tokenizer().vocab_size())) r.sampling.top_k = static_cast<int>(*v);
  r.stop.stop_strings = read_stop_strings(body, "stop_sequences");
  r.stop.max_tokens = read_max_tokens(body, model, r.prompt.size());
  // Not in Anthropic's API: the same benchmark extension as the OpenAI routes, so load generators get
  // exactly max_tokens from either API.
  r.stop.ignore_eos = body.boolean("ignore_eos").value_or(false);
  if (const Json* metadata = body.object("metadata")) Fields(*metadata, "metadata").string("user_id");
  const bool stream = body.boolean("stream").value_or(false);
  const int input_tokens = static_cast<int>(r.prompt.size());
  auto handle = submit_or_throw(model.engine(), std::move(r), "messages");
  return std::make_unique<AnthropicGeneration>(std::move(handle), model, stream, input_tokens);
}

Reply anthropic_count_tokens(std::span<const ServedModel* const> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  const ServedModel& model = pick_model(models, body);
  const size_t n = prompt_of(body, model).size();
  return Reply{200, dump_json(Json{{"input_tokens", n}}), "application/json", {}};
}

}  // namespace pensieve::api
