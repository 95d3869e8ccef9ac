#include "api/anthropic.h"

#include <limits>

#include "api/api_error.h"
#include "api/chat_output.h"
#include "api/constraint_fields.h"
#include "api/sampling_fields.h"
#include "api/tool_history.h"

namespace pensieve::api {
namespace {

using engine::FinishReason;
using engine::GenerationEvent;
using Kind = chat::OutputPiece::Kind;

// What a Messages request asks of the prompt and of the reading of the output.
struct Conversation {
  Json messages;
  Json tools;             // OpenAI-shaped for the template; null when none or tool_choice is "none"
  bool thinking = false;  // thinking: {type: "enabled"}
  bool one_call = false;  // tool_choice.disable_parallel_tool_use
};

Conversation conversation_of(const Fields& body) {
  Conversation c;
  c.messages = anthropic_template_messages(body);
  c.tools = anthropic_tools(body);
  if (const Json* choice = body.object("tool_choice")) {
    Fields f(*choice, "tool_choice");
    const std::string type = f.required_string("type");
    if (type != "auto" && type != "any" && type != "tool" && type != "none") {
      throw invalid_field("tool_choice.type", "must be auto, any, tool or none (got '" + type + "')");
    }
    if (type == "tool") f.required_string("name");
    if (type == "none") c.tools = nullptr;
    c.one_call = f.boolean("disable_parallel_tool_use").value_or(false);
  }
  if (const Json* thinking = body.object("thinking")) {
    Fields f(*thinking, "thinking");
    const std::string type = f.required_string("type");
    if (type != "enabled" && type != "disabled") {
      throw invalid_field("thinking.type", "must be 'enabled' or 'disabled' (got '" + type + "')");
    }
    c.thinking = type == "enabled";
    if (c.thinking) f.integer("budget_tokens", 1, std::numeric_limits<int32_t>::max());
  }
  return c;
}

ServedModel::ChatPrompt prompt_of(const Conversation& c, const ServedModel& model) {
  // Templates that think by default (Qwen3) are told not to unless the request enabled thinking.
  return model.render_chat(c.messages, c.tools, Json{{"enable_thinking", c.thinking}});
}

std::string event(const char* name, const Json& data) {
  return std::string("event: ") + name + "\ndata: " + dump_json(data) + "\n\n";
}

Json arguments_object(const std::string& arguments) {
  Json input = Json::parse(arguments, nullptr, /*allow_exceptions=*/false);
  return input.is_object() ? input : Json::object();
}

class AnthropicGeneration final : public Generation {
 public:
  AnthropicGeneration(std::shared_ptr<engine::RequestHandle> handle, const ServedModel& model, bool stream,
                      const Conversation& c, const chat::OutputOptions& output)
      : Generation(std::move(handle), stream, model.id()),
        model_ref_(model),
        id_(make_response_id("msg_")),
        model_(model.id()),
        thinking_(c.thinking),
        one_call_(c.one_call),
        output_(model, output) {}

  // message_start waits for the first events: by then the engine has looked the prompt up in the prefix cache,
  // so its usage can say how many input tokens were read from the cache.
  std::string stream_open() override { return {}; }

  std::string stream_events(std::span<const GenerationEvent> events) override {
    std::string out = start();
    for (const GenerationEvent& e : events) {
      if (e.choice != 0) continue;
      for (const chat::OutputPiece& p : read(e)) out += stream_piece(p);
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
    std::string out = start();
    if (next_index_ == 0) out += open_block("text", {{"type", "text"}, {"text", ""}});
    out += close_block();
    const engine::Usage u = handle().usage();
    return out +
           event("message_delta", {{"type", "message_delta"},
                                   {"delta", {{"stop_reason", stop_reason_}, {"stop_sequence", stop_sequence_}}},
                                   {"usage", {{"output_tokens", u.completion_tokens}}}}) +
           event("message_stop", {{"type", "message_stop"}});
  }

  void collect(std::span<const GenerationEvent> events) override {
    for (const GenerationEvent& e : events) {
      if (e.choice != 0) continue;
      for (chat::OutputPiece& p : read(e)) {
        if (p.kind == Kind::ToolCall) {
          content_.push_back({{"type", "tool_use"}, {"id", make_tool_call_id(model_ref_, "toolu_")},
                              {"name", p.call.name}, {"input", arguments_object(p.call.arguments)}});
          continue;
        }
        const char* type = p.kind == Kind::Text ? "text" : "thinking";
        if (content_.empty() || content_.back()["type"] != type) {
          content_.push_back(p.kind == Kind::Text ? Json{{"type", "text"}, {"text", ""}}
                                                  : Json{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
        }
        Json& field = content_.back()[type];
        field = field.get<std::string>() + p.text;
      }
      if (const char* err = finish_error_text(e)) error_ = err;
      else if (e.finish) set_stop(e);
    }
  }

  Reply reply() override {
    if (!error_.empty()) {
      return Reply{500, anthropic_error_body(ApiError(ErrorKind::Internal, error_)), "application/json", {}};
    }
    if (content_.empty()) content_.push_back({{"type", "text"}, {"text", ""}});
    Json body = {{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"model", model_},
                 {"content", content_}, {"stop_reason", stop_reason_}, {"stop_sequence", stop_sequence_},
                 {"usage", usage_json(handle().usage())}};
    return Reply{200, dump_json(body), "application/json", {}};
  }

 private:
  // Anthropic's accounting: input_tokens excludes what was read from the cache. Prefixes are cached
  // automatically and writing them costs nothing, so no tokens count as cache creation.
  static Json usage_json(const engine::Usage& u) {
    return {{"input_tokens", u.prompt_tokens - u.cached_prompt_tokens},
            {"cache_creation_input_tokens", 0},
            {"cache_read_input_tokens", u.cached_prompt_tokens},
            {"output_tokens", u.completion_tokens}};
  }

  // Reasoning is shown only when the request enabled thinking; calls past the first go when asked for one.
  std::vector<chat::OutputPiece> read(const GenerationEvent& e) {
    std::vector<chat::OutputPiece> pieces;
    output_.push(e, pieces);
    std::erase_if(pieces, [&](const chat::OutputPiece& p) {
      if (p.kind == Kind::Reasoning) return !thinking_;
      if (p.kind != Kind::ToolCall) return false;
      return one_call_ && calls_++ > 0;
    });
    for (const auto& p : pieces) {
      if (p.kind == Kind::ToolCall) called_ = true;
    }
    return pieces;
  }

  std::string start() {
    if (started_) return {};
    started_ = true;
    Json usage = usage_json(handle().usage());
    usage["output_tokens"] = 0;
    Json message = {{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"content", Json::array()},
                    {"model", model_}, {"stop_reason", nullptr}, {"stop_sequence", nullptr}, {"usage", usage}};
    return event("message_start", {{"type", "message_start"}, {"message", message}});
  }

  std::string open_block(const std::string& kind, const Json& block) {
    std::string out = close_block();
    open_kind_ = kind;
    open_index_ = next_index_++;
    out += event("content_block_start", {{"type", "content_block_start"}, {"index", open_index_}, {"content_block", block}});
    // Anthropic's own order: message_start, the first content_block_start, then a ping.
    if (open_index_ == 0) out += event("ping", {{"type", "ping"}});
    return out;
  }

  std::string close_block() {
    if (open_index_ < 0) return {};
    const int index = std::exchange(open_index_, -1);
    open_kind_.clear();
    return event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}});
  }

  std::string delta(const Json& d) {
    return event("content_block_delta", {{"type", "content_block_delta"}, {"index", open_index_}, {"delta", d}});
  }

  // A tool call is a whole block: start (id, name, empty input), its arguments as one input_json_delta, stop.
  std::string stream_piece(const chat::OutputPiece& p) {
    std::string out;
    if (p.kind == Kind::ToolCall) {
      out += open_block("tool_use", {{"type", "tool_use"}, {"id", make_tool_call_id(model_ref_, "toolu_")},
                                     {"name", p.call.name}, {"input", Json::object()}});
      out += delta({{"type", "input_json_delta"}, {"partial_json", p.call.arguments}});
      return out + close_block();
    }
    if (p.kind == Kind::Text) {
      if (open_kind_ != "text") out += open_block("text", {{"type", "text"}, {"text", ""}});
      return out + delta({{"type", "text_delta"}, {"text", p.text}});
    }
    if (open_kind_ != "thinking") out += open_block("thinking", {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
    return out + delta({{"type", "thinking_delta"}, {"thinking", p.text}});
  }

  void set_stop(const GenerationEvent& e) {
    if (*e.finish == FinishReason::Length) {
      stop_reason_ = "max_tokens";
    } else if (!e.matched_stop.empty()) {
      stop_reason_ = "stop_sequence";
      stop_sequence_ = e.matched_stop;
    } else {
      stop_reason_ = called_ ? "tool_use" : "end_turn";
    }
  }

  const ServedModel& model_ref_;
  std::string id_;
  std::string model_;
  bool thinking_;
  bool one_call_;
  ChatOutput output_;
  int calls_ = 0;
  bool called_ = false;
  bool started_ = false;
  int next_index_ = 0;
  int open_index_ = -1;
  std::string open_kind_;
  Json content_ = Json::array();
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
  const Conversation conversation = conversation_of(body);
  ServedModel::ChatPrompt prompt = prompt_of(conversation, model);
  auto grammar = anthropic_output_constraint(body, model);
  // A constrained answer is all answer, even after a prompt that opened <think> (as on the OpenAI route).
  const chat::OutputOptions output = output_options(model, conversation.tools, prompt.opens_reasoning && !grammar);
  engine::GenerationRequest r;
  r.prompt = std::move(prompt.ids);
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
  r.grammar = std::move(grammar);
  auto handle = submit_or_throw(model.engine(), std::move(r), "messages");
  return std::make_unique<AnthropicGeneration>(std::move(handle), model, stream, conversation, output);
}

Reply anthropic_count_tokens(std::span<const ServedModel* const> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  const ServedModel& model = pick_model(models, body);
  const size_t n = prompt_of(conversation_of(body), model).ids.size();
  return Reply{200, dump_json(Json{{"input_tokens", n}}), "application/json", {}};
}

}  // namespace pensieve::api
