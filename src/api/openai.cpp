#include "api/openai.h"

#include <algorithm>

#include "api/api_error.h"
#include "api/chat_output.h"
#include "api/constraint_fields.h"
#include "api/sampling_fields.h"
#include "api/tool_history.h"
#include "chat/chat_template.h"

namespace pensieve::api {
namespace {

using engine::FinishReason;
using engine::GenerationEvent;

// ---- request side ----

// Messages with their content flattened to a string (text parts joined) and "developer" read as "system",
// checked so that the template only ever sees the shapes it expects.
Json chat_messages(const Fields& body) {
  const Json& messages = body.required_array("messages");
  if (messages.empty()) throw invalid_field("messages", "must hold at least one message");
  Json out = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string path = "messages[" + std::to_string(i) + "]";
    Fields m(messages[i], path);
    std::string role = m.required_string("role");
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      throw invalid_field(path + ".role", "must be one of system, developer, user, assistant, tool (got '" + role + "')");
    }
    Json msg = messages[i];
    msg["role"] = role;
    const Json* content = m.get("content");
    if (!content) {
      if (role != "assistant") throw invalid_field(path + ".content", "is required");
      msg["content"] = nullptr;
    } else if (content->is_array()) {
      for (size_t p = 0; p < content->size(); ++p) {
        const std::string part_path = path + ".content[" + std::to_string(p) + "]";
        Fields part((*content)[p], part_path);
        const std::string type = part.required_string("type");
        if (type != "text") throw invalid_field(part_path + ".type", "'" + type + "' is not supported; only text parts are");
        part.required_string("text");
      }
    } else if (!content->is_string()) {
      throw invalid_field(path + ".content", "must be a string or an array of text parts, not " + type_name(*content));
    }
    out.push_back(std::move(msg));
  }
  Json flat = chat::flatten_content_parts(out);
  normalize_openai_tool_history(flat);
  return flat;
}

int read_n(const Fields& body) {
  return static_cast<int>(body.integer("n", 1, 16).value_or(1));
}

bool read_include_usage(const Fields& body) {
  const Json* so = body.object("stream_options");
  if (!so) return false;
  return Fields(*so, "stream_options").boolean("include_usage").value_or(false);
}

// ---- response side ----

std::string token_text(const tokenizer::Tokenizer& tok, int32_t id) {
  try {
    return std::string(tok.token_piece(id));
  } catch (const std::exception&) {
    return {};
  }
}

Json byte_values(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

const char* finish_name(FinishReason r, bool called_tools = false) {
  if (r == FinishReason::Length) return "length";
  return called_tools ? "tool_calls" : "stop";
}

std::string sse(const Json& j) { return "data: " + dump_json(j) + "\n\n"; }

Json usage_json(const engine::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}}};
}

// Shapes events of one chat or text completion request, for every choice.
class OpenAiGeneration final : public Generation {
 public:
  struct Options {
    bool chat = true;
    bool stream = false;
    bool include_usage = false;
    int n = 1;
    int logprobs = -1;  // -1 none; else the number of alternatives per token
    chat::OutputOptions output;      // chat: how the text is read (tool calls, reasoning)
    bool parallel_tool_calls = true;  // false: a choice returns its first tool call only
  };

  OpenAiGeneration(std::shared_ptr<engine::RequestHandle> handle, const ServedModel& model, Options o)
      : Generation(std::move(handle), o.stream, model.id()),
        o_(o),
        model_ref_(model),
        tokenizer_(model.tokenizer()),
        id_(make_response_id(o.chat ? "chatcmpl-" : "cmpl-")),
        model_(model.id()),
        created_(unix_seconds_now()),
        choices_(static_cast<size_t>(o.n)) {
    for (auto& c : choices_) {
      c.logprobs = o.chat ? Json{{"content", Json::array()}} : empty_text_logprobs();
      if (o.chat) c.output = std::make_unique<ChatOutput>(model, o.output);
    }
  }

  std::string stream_open() override {
    if (!o_.chat) return {};
    std::string out;
    for (int i = 0; i < o_.n; ++i) {
      Json choice = {{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                     {"finish_reason", nullptr}};
      out += sse(chunk(Json::array({choice})));
    }
    return out;
  }

  std::string stream_events(std::span<const GenerationEvent> events) override {
    std::string out;
    for (const GenerationEvent& e : events) {
      if (e.choice < 0 || e.choice >= o_.n) continue;
      if (const char* err = finish_error_text(e)) {
        out += sse(Json{{"error", {{"message", err}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}});
        failed_ = true;
        continue;
      }
      const bool has_logprobs = o_.logprobs >= 0 && !e.logprobs.empty();
      if (o_.chat) {
        out += chat_chunks(e, has_logprobs);
        continue;
      }
      if (!e.text.empty() || has_logprobs) {
        Json choice = {{"index", e.choice}, {"text", e.text}};
        choice["logprobs"] = has_logprobs ? logprobs_of(e, text_offset_[e.choice]) : Json(nullptr);
        choice["finish_reason"] = nullptr;
        text_offset_[e.choice] += e.text.size();
        out += sse(chunk(Json::array({choice})));
      }
      if (e.finish) {
        Json choice = {{"index", e.choice}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", finish_name(*e.finish)}};
        out += sse(chunk(Json::array({choice})));
      }
    }
    return out;
  }

  std::string stream_close() override {
    std::string out;
    if (o_.include_usage && !failed_) {
      Json last = chunk(Json::array());
      last["usage"] = usage_json(handle().usage());
      out += sse(last);
    }
    out += "data: [DONE]\n\n";
    return out;
  }

  void collect(std::span<const GenerationEvent> events) override {
    for (const GenerationEvent& e : events) {
      if (e.choice < 0 || e.choice >= o_.n) continue;
      Choice& c = choices_[static_cast<size_t>(e.choice)];
      if (const char* err = finish_error_text(e)) error_ = err;
      if (o_.logprobs >= 0 && !e.logprobs.empty()) append_logprobs(c, e);
      if (!o_.chat) {
        c.text += e.text;
      } else {
        for (chat::OutputPiece& p : read(c, e)) {
          if (p.kind == chat::OutputPiece::Kind::Text) c.text += p.text;
          else if (p.kind == chat::OutputPiece::Kind::Reasoning) c.reasoning += p.text;
          else c.calls.push_back(tool_call_json(c, p.call));
        }
      }
      if (e.finish) c.finish = finish_name(*e.finish, !c.calls.empty());
    }
  }

  Reply reply() override {
    if (!error_.empty()) {
      return Reply{500, openai_error_body(ApiError(ErrorKind::Internal, error_)), "application/json", {}};
    }
    Json choices = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      const Choice& c = choices_[i];
      Json choice = {{"index", i}};
      if (o_.chat) {
        Json message = {{"role", "assistant"}, {"content", c.text}};
        if (!c.calls.empty() && c.text.empty()) message["content"] = nullptr;
        if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
        if (!c.calls.empty()) message["tool_calls"] = c.calls;
        message["refusal"] = nullptr;
        choice["message"] = std::move(message);
      } else {
        choice["text"] = c.text;
      }
      choice["logprobs"] = o_.logprobs >= 0 ? c.logprobs : Json(nullptr);
      choice["finish_reason"] = c.finish.empty() ? "stop" : c.finish;
      choices.push_back(std::move(choice));
    }
    Json body = {{"id", id_}, {"object", o_.chat ? "chat.completion" : "text_completion"}, {"created", created_},
                 {"model", model_}, {"choices", std::move(choices)}, {"usage", usage_json(handle().usage())},
                 {"system_fingerprint", nullptr}};
    return Reply{200, dump_json(body), "application/json", {}};
  }

 private:
  struct Choice {
    std::string text;
    std::string finish;
    Json logprobs;
    std::unique_ptr<ChatOutput> output;  // chat only
    std::string reasoning;
    Json calls = Json::array();  // OpenAI tool_calls entries so far
  };

  // The pieces an event completes for its choice; with parallel_tool_calls false, calls after the first drop.
  std::vector<chat::OutputPiece> read(Choice& c, const GenerationEvent& e) {
    std::vector<chat::OutputPiece> pieces;
    c.output->push(e, pieces);
    if (!o_.parallel_tool_calls) {
      std::erase_if(pieces, [&, seen = c.calls.size()](const chat::OutputPiece& p) mutable {
        return p.kind == chat::OutputPiece::Kind::ToolCall && seen++ > 0;
      });
    }
    return pieces;
  }

  Json tool_call_json(const Choice& c, const chat::ToolCall& call) const {
    return {{"index", c.calls.size()}, {"id", make_tool_call_id(model_ref_, "call_")}, {"type", "function"},
            {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
  }

  // Chat chunks for one event: content, reasoning_content and tool_calls deltas in output order, then the
  // finish. A tool call streams as two deltas: index, id, type and name with empty arguments, then arguments.
  std::string chat_chunks(const GenerationEvent& e, bool has_logprobs) {
    Choice& c = choices_[static_cast<size_t>(e.choice)];
    std::string out;
    Json logprobs = has_logprobs ? logprobs_of(e, 0) : Json(nullptr);
    const auto send = [&](Json delta) {
      Json choice = {{"index", e.choice}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                     {"finish_reason", nullptr}};
      logprobs = nullptr;  // once per event
      out += sse(chunk(Json::array({std::move(choice)})));
    };
    for (chat::OutputPiece& p : read(c, e)) {
      if (p.kind == chat::OutputPiece::Kind::Text) {
        send({{"content", p.text}});
      } else if (p.kind == chat::OutputPiece::Kind::Reasoning) {
        send({{"reasoning_content", p.text}});
      } else {
        Json call = tool_call_json(c, p.call);
        c.calls.push_back(call);
        Json head = call;
        head["function"]["arguments"] = "";
        send({{"tool_calls", Json::array({std::move(head)})}});
        send({{"tool_calls", Json::array({{{"index", call["index"]}, {"function", {{"arguments", p.call.arguments}}}}})}});
      }
    }
    if (has_logprobs && !logprobs.is_null()) send({{"content", ""}});
    if (e.finish) {
      Json choice = {{"index", e.choice}, {"delta", Json::object()}, {"logprobs", nullptr},
                     {"finish_reason", finish_name(*e.finish, !c.calls.empty())}};
      out += sse(chunk(Json::array({std::move(choice)})));
    }
    return out;
  }

  static Json empty_text_logprobs() {
    return {{"tokens", Json::array()}, {"token_logprobs", Json::array()}, {"top_logprobs", Json::array()},
            {"text_offset", Json::array()}};
  }

  Json chunk(Json choices) const {
    Json c = {{"id", id_}, {"object", o_.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_},
              {"model", model_}, {"system_fingerprint", nullptr}, {"choices", std::move(choices)}};
    if (o_.include_usage) c["usage"] = nullptr;
    return c;
  }

  Json chat_entry(int32_t token, float logprob) const {
    const std::string piece = token_text(tokenizer_, token);
    return {{"token", piece}, {"logprob", logprob}, {"bytes", byte_values(piece)}};
  }

  // Logprobs of the tokens of one event, in the endpoint's format.
  Json logprobs_of(const GenerationEvent& e, size_t text_offset) const {
    Choice scratch;
    scratch.logprobs = o_.chat ? Json{{"content", Json::array()}} : empty_text_logprobs();
    append_logprobs(scratch, e, text_offset);
    return scratch.logprobs;
  }

  void append_logprobs(Choice& c, const GenerationEvent& e, size_t text_offset = 0) const {
    for (size_t t = 0; t < e.logprobs.size(); ++t) {
      const auto& lp = e.logprobs[t];
      const auto* alternatives = t < e.top_logprobs.size() ? &e.top_logprobs[t] : nullptr;
      if (o_.chat) {
        Json entry = chat_entry(lp.token, lp.logprob);
        Json top = Json::array();
        if (alternatives) {
          for (const auto& alt : *alternatives) top.push_back(chat_entry(alt.token, alt.logprob));
        }
        entry["top_logprobs"] = std::move(top);
        c.logprobs["content"].push_back(std::move(entry));
      } else {
        const std::string piece = token_text(tokenizer_, lp.token);
        c.logprobs["tokens"].push_back(piece);
        c.logprobs["token_logprobs"].push_back(lp.logprob);
        Json top = Json::object();
        if (alternatives) {
          for (const auto& alt : *alternatives) top[token_text(tokenizer_, alt.token)] = alt.logprob;
        }
        c.logprobs["top_logprobs"].push_back(std::move(top));
        c.logprobs["text_offset"].push_back(text_offset);
        text_offset += piece.size();
      }
    }
  }

  Options o_;
  const ServedModel& model_ref_;
  const tokenizer::Tokenizer& tokenizer_;
  std::string id_;
  std::string model_;
  int64_t created_;
  std::vector<Choice> choices_;
  std::vector<size_t> text_offset_ = std::vector<size_t>(16, 0);
  std::string error_;
  bool failed_ = false;
};

// Fields both endpoints share, applied once the prompt is known.
engine::GenerationRequest base_request(const Fields& body, const ServedModel& model, std::vector<int32_t> prompt) {
  engine::GenerationRequest r;
  read_openai_sampling(body, model.tokenizer().vocab_size(), r.sampling);
  r.stop.stop_strings = read_stop_strings(body, "stop");
  r.stop.ignore_eos = body.boolean("ignore_eos").value_or(false);
  r.stop.max_tokens = read_max_tokens(body, model, prompt.size());
  r.n = read_n(body);
  body.string("user");  // accepted, type-checked, unused
  r.prompt = std::move(prompt);
  return r;
}

}  // namespace

Outcome openai_chat_completions(std::span<const ServedModel* const> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  const ServedModel& model = pick_model(models, body);
  Json messages = chat_messages(body);
  Json tools = openai_tools(body);
  if (const Json* choice = body.get("tool_choice")) {
    if (choice->is_string() && *choice == "none") tools = nullptr;
    else if (!choice->is_string() && !choice->is_object()) throw invalid_field("tool_choice", "must be a string or an object");
  }
  const Json* template_kwargs = body.object("chat_template_kwargs");
  OpenAiGeneration::Options o;
  o.chat = true;
  o.stream = body.boolean("stream").value_or(false);
  o.include_usage = o.stream && read_include_usage(body);
  o.n = read_n(body);
  const bool logprobs = body.boolean("logprobs").value_or(false);
  const auto top = body.integer("top_logprobs", 0, 20);
  if (top && !logprobs) throw invalid_field("top_logprobs", "needs 'logprobs': true");
  if (logprobs) o.logprobs = static_cast<int>(top.value_or(0));
  o.parallel_tool_calls = body.boolean("parallel_tool_calls").value_or(true);

  ServedModel::ChatPrompt prompt = model.render_chat(messages, tools, template_kwargs ? *template_kwargs : Json());
  auto grammar = openai_output_constraint(body, model);
  // A constrained answer is all answer: the grammar holds from the first token, so text that follows a prompt
  // which opened <think> is not reasoning (else a forced call or a JSON answer would vanish into it).
  o.output = output_options(model, tools, prompt.opens_reasoning && !grammar);
  engine::GenerationRequest request = base_request(body, model, std::move(prompt.ids));
  request.sampling.top_logprobs = o.logprobs;
  request.grammar = std::move(grammar);
  auto handle = submit_or_throw(model.engine(), std::move(request), "messages");
  return std::make_unique<OpenAiGeneration>(std::move(handle), model, o);
}

Outcome openai_completions(std::span<const ServedModel* const> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  const ServedModel& model = pick_model(models, body);
  const Json* prompt = body.get("prompt");
  if (!prompt) throw invalid_field("prompt", "is required");
  std::vector<int32_t> ids;
  if (prompt->is_string()) {
    ids = model.text_prompt(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
    ids = model.checked_ids(*prompt, "prompt");
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    ids = model.text_prompt((*prompt)[0].get<std::string>());
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_array()) {
    ids = model.checked_ids((*prompt)[0], "prompt[0]");
  } else {
    throw invalid_field("prompt", "must be a string, an array of token ids, or a one-element array of either");
  }
  if (body.boolean("echo").value_or(false)) throw invalid_field("echo", "is not supported");
  OpenAiGeneration::Options o;
  o.chat = false;
  o.stream = body.boolean("stream").value_or(false);
  o.include_usage = o.stream && read_include_usage(body);
  o.n = read_n(body);
  if (auto lp = body.integer("logprobs", 0, 20)) o.logprobs = static_cast<int>(*lp);

  engine::GenerationRequest request = base_request(body, model, std::move(ids));
  request.sampling.top_logprobs = o.logprobs;
  request.grammar = openai_output_constraint(body, model);
  auto handle = submit_or_throw(model.engine(), std::move(request), "prompt");
  return std::make_unique<OpenAiGeneration>(std::move(handle), model, o);
}

namespace {
Json model_json(const ServedModel& m, const std::string& name) {
  return {{"id", name}, {"object", "model"}, {"created", m.created()}, {"owned_by", "pensieve"}};
}

[[noreturn]] void throw_no_such_model(std::string_view id) {
  throw ApiError(ErrorKind::NotFound, "model '" + std::string(id) + "' does not exist; GET /v1/models lists the served ones",
                 "model");
}

Json listed_json(const ListedModel& m, const std::string& name) {
  return {{"id", name},
          {"object", "model"},
          {"created", m.facts.modified_unix},
          {"owned_by", "pensieve"},
          {"state", m.loaded ? "loaded" : m.loading ? "loading" : "available"}};
}
}  // namespace

Reply openai_models(std::span<const ListedModel> models) {
  Json data = Json::array();
  for (const ListedModel& m : models) {
    data.push_back(listed_json(m, m.name));
    for (const std::string& alias : m.aliases) data.push_back(listed_json(m, alias));
  }
  return Reply{200, dump_json(Json{{"object", "list"}, {"data", std::move(data)}}), "application/json", {}};
}

Reply openai_model(std::span<const ListedModel> models, std::string_view id) {
  for (const ListedModel& m : models) {
    if (m.name == id || std::find(m.aliases.begin(), m.aliases.end(), id) != m.aliases.end()) {
      return Reply{200, dump_json(listed_json(m, std::string(id))), "application/json", {}};
    }
  }
  throw_no_such_model(id);
}

Reply openai_models(std::span<const ServedModel* const> models) {
  Json data = Json::array();
  for (const ServedModel* m : models) {
    for (const std::string& name : m->names()) data.push_back(model_json(*m, name));
  }
  return Reply{200, dump_json(Json{{"object", "list"}, {"data", std::move(data)}}), "application/json", {}};
}

Reply openai_model(std::span<const ServedModel* const> models, std::string_view id) {
  for (const ServedModel* m : models) {
    if (m->answers_to(id)) return Reply{200, dump_json(model_json(*m, std::string(id))), "application/json", {}};
  }
  throw_no_such_model(id);
}

}  // namespace pensieve::api
