// Ollama's generation routes: /api/chat and /api/generate. Options map onto the engine's sampling and stop
// criteria; `format` and `tools` use the same constrained decoding and tool-call parsing as the OpenAI routes.
// Streamed responses are NDJSON: one object per line, the last with "done": true and the timings (nanoseconds).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>

#include "api/chat_output.h"
#include "api/constraint_fields.h"
#include "api/json_fields.h"
#include "api/ollama.h"
#include "api/sampling_fields.h"
#include "api/tool_history.h"

namespace pensieve::api {

namespace {

using Clock = std::chrono::steady_clock;

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[48];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>(micros));
  return std::string(text) + frac;
}

int64_t nanos(Clock::duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); }

// `options`: sampling and stopping. num_ctx is read but the context is the server's (--ctx-size).
void read_options(const Fields& body, const ServedModel& model, engine::GenerationRequest& r) {
  r.stop.max_tokens = read_max_tokens(Fields(Json::object(), ""), model, r.prompt.size());
  const Json* options = body.object("options");
  if (!options) return;
  const Fields o(*options, "options");
  engine::SamplingParams& s = r.sampling;
  if (auto v = o.number("temperature", 0, 100)) s.temperature = static_cast<float>(*v);
  if (auto v = o.integer("top_k", 0, std::numeric_limits<int32_t>::max())) s.top_k = static_cast<int>(*v);
  if (auto v = o.number("top_p", 0, 1)) s.top_p = static_cast<float>(*v);
  if (auto v = o.number("min_p", 0, 1)) s.min_p = static_cast<float>(*v);
  if (auto v = o.number("repeat_penalty", 0, 100)) s.repetition_penalty = static_cast<float>(*v);
  if (auto v = o.integer("repeat_last_n", -1, 1 << 20)) s.repetition_last_n = *v < 0 ? 1 << 20 : static_cast<int>(*v);
  if (auto v = o.number("presence_penalty", -100, 100)) s.presence_penalty = static_cast<float>(*v);
  if (auto v = o.number("frequency_penalty", -100, 100)) s.frequency_penalty = static_cast<float>(*v);
  if (auto v = o.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    s.seed = static_cast<uint64_t>(*v);
  }
  o.integer("num_ctx", 1, std::numeric_limits<int32_t>::max());
  // -1: until the context is full; -2: fill it (both "the rest of the context" here); N: at most N.
  if (auto v = o.integer("num_predict", -2, std::numeric_limits<int32_t>::max())) {
    Json asked = Json::object();
    if (*v > 0) asked["max_tokens"] = *v;
    RequestPolicy unlimited = model.policy();
    r.stop.max_tokens = *v > 0 ? read_max_tokens(Fields(asked, "options"), model, r.prompt.size())
                               : std::max(0, model.engine().context_length() - static_cast<int>(r.prompt.size()));
    if (*v <= 0 && unlimited.max_tokens_limit > 0) r.stop.max_tokens = std::min(r.stop.max_tokens, unlimited.max_tokens_limit);
    if (*v == 0) r.stop.max_tokens = 0;
  }
  r.stop.stop_strings = read_stop_strings(o, "stop");
}

// Ollama chat messages as template messages: tool calls get the Hugging Face shape, tool results their name.
Json template_messages(const Fields& body) {
  const Json& messages = body.required_array("messages");
  Json out = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string path = "messages[" + std::to_string(i) + "]";
    Fields m(messages[i], path);
    const std::string role = m.required_string("role");
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      throw invalid_field(path + ".role", "must be one of system, user, assistant, tool (got '" + role + "')");
    }
    if (m.array("images") && !m.array("images")->empty()) throw invalid_field(path + ".images", "are not supported");
    Json msg = {{"role", role}, {"content", m.string("content").value_or("")}};
    if (const Json* calls = m.array("tool_calls")) {
      Json list = Json::array();
      for (size_t c = 0; c < calls->size(); ++c) {
        const std::string call_path = path + ".tool_calls[" + std::to_string(c) + "]";
        const Json* fn = Fields((*calls)[c], call_path).object("function");
        if (!fn) throw invalid_field(call_path + ".function", "is required");
        Fields f(*fn, call_path + ".function");
        const std::string name = f.required_string("name");
        const Json* args = f.object("arguments");
        list.push_back({{"id", "call_" + std::to_string(i) + "_" + std::to_string(c)},
                        {"type", "function"},
                        {"function", {{"name", name}, {"arguments", args ? *args : Json::object()}}}});
      }
      msg["tool_calls"] = std::move(list);
    }
    if (auto name = m.string("tool_name")) msg["name"] = *name;
    if (auto thinking = m.string("thinking")) msg["reasoning_content"] = *thinking;
    out.push_back(std::move(msg));
  }
  return out;
}

class OllamaGeneration : public Generation {
 public:
  OllamaGeneration(std::shared_ptr<engine::RequestHandle> handle, bool stream, bool chat, const ServedModel& model,
                   std::string name, const chat::OutputOptions& output)
      : Generation(std::move(handle), stream), chat_(chat), name_(std::move(name)) {
    if (chat_) output_ = std::make_unique<ChatOutput>(model, output);
  }

  std::string stream_content_type() const override { return "application/x-ndjson"; }
  std::string stream_open() override { return {}; }
  std::string stream_events(std::span<const engine::GenerationEvent> events) override {
    std::string out;
    for (const auto& e : events) {
      Pieces p = read(e);
      if (!p.text.empty() || !p.thinking.empty() || !p.calls.empty()) out += dump_json(line(p, false)) + "\n";
    }
    return out;
  }
  std::string stream_close() override { return dump_json(line(Pieces{}, true)) + "\n"; }

  void collect(std::span<const engine::GenerationEvent> events) override {
    for (const auto& e : events) {
      Pieces p = read(e);
      all_.text += p.text;
      all_.thinking += p.thinking;
      for (Json& c : p.calls) all_.calls.push_back(std::move(c));
    }
  }
  Reply reply() override { return Reply{200, dump_json(line(all_, true))}; }

 private:
  struct Pieces {
    std::string text;
    std::string thinking;
    std::vector<Json> calls;
  };

  Pieces read(const engine::GenerationEvent& e) {
    if (!first_token_ && !e.tokens.empty()) first_token_ = Clock::now();
    if (e.finish) {
      finish_ = *e.finish;
      if (const char* why = finish_error_text(e)) error_ = why;
    }
    Pieces p;
    if (!chat_) {
      p.text = e.text;
      return p;
    }
    std::vector<chat::OutputPiece> pieces;
    output_->push(e, pieces);
    for (chat::OutputPiece& piece : pieces) {
      if (piece.kind == chat::OutputPiece::Kind::Text) {
        p.text += piece.text;
      } else if (piece.kind == chat::OutputPiece::Kind::Reasoning) {
        p.thinking += piece.text;
      } else {
        Json args = Json::parse(piece.call.arguments, nullptr, false);
        if (args.is_discarded() || !args.is_object()) args = Json::object();
        p.calls.push_back({{"function", {{"name", piece.call.name}, {"arguments", std::move(args)}}}});
      }
    }
    return p;
  }

  Json line(const Pieces& p, bool done) const {
    Json j = {{"model", name_}, {"created_at", rfc3339_now()}};
    if (chat_) {
      Json message = {{"role", "assistant"}, {"content", p.text}};
      if (!p.thinking.empty()) message["thinking"] = p.thinking;
      if (!p.calls.empty()) message["tool_calls"] = p.calls;
      j["message"] = std::move(message);
    } else {
      j["response"] = p.text;
      if (!p.thinking.empty()) j["thinking"] = p.thinking;
    }
    j["done"] = done;
    if (!done) return j;
    if (!error_.empty()) j["error"] = error_;
    j["done_reason"] = finish_ == engine::FinishReason::Length ? "length" : finish_ == engine::FinishReason::Stop ? "stop" : "error";
    const engine::Usage usage = handle().usage();
    const auto end = Clock::now();
    const auto first = first_token_.value_or(end);
    j["total_duration"] = nanos(end - start_);
    j["load_duration"] = 0;  // loading happened before the request reached the model (see the server log)
    j["prompt_eval_count"] = usage.prompt_tokens;
    j["prompt_eval_duration"] = nanos(first - start_);
    j["eval_count"] = usage.completion_tokens;
    j["eval_duration"] = nanos(end - first);
    return j;
  }

  bool chat_;
  std::string name_;
  std::unique_ptr<ChatOutput> output_;
  Clock::time_point start_ = Clock::now();
  std::optional<Clock::time_point> first_token_;
  engine::FinishReason finish_ = engine::FinishReason::Stop;
  std::string error_;
  Pieces all_;
};

// An empty prompt or message list only loads (or, with keep_alive 0, unloads) the model: Ollama answers at once.
Reply load_only(const std::string& name, bool chat, bool unload) {
  Json j = {{"model", name}, {"created_at", rfc3339_now()}};
  if (chat) j["message"] = {{"role", "assistant"}, {"content", ""}};
  else j["response"] = "";
  j["done"] = true;
  j["done_reason"] = unload ? "unload" : "load";
  return Reply{200, dump_json(j)};
}

bool unloads(const Fields& body) {
  const Json* k = body.get("keep_alive");
  return k && ((k->is_number() && k->get<double>() == 0) || (k->is_string() && (*k == "0" || *k == "0s")));
}

}  // namespace

Outcome ollama_chat(std::span<const ServedModel* const> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  const ServedModel& model = pick_model(models, body);
  const std::string name = body.required_string("model");
  const Json& raw_messages = body.required_array("messages");
  if (raw_messages.empty()) return load_only(name, true, unloads(body));
  const Json messages = template_messages(body);
  const Json tools = openai_tools(body);
  const bool stream = body.boolean("stream").value_or(true);
  const std::optional<bool> think = body.boolean("think");
  const Json extra = think && !*think ? Json{{"enable_thinking", false}} : Json();
  ServedModel::ChatPrompt prompt = model.render_chat(messages, tools, extra);
  auto grammar = ollama_output_constraint(body, model);
  const chat::OutputOptions output = output_options(model, tools, prompt.opens_reasoning && !grammar);
  engine::GenerationRequest request;
  request.prompt = std::move(prompt.ids);
  read_options(body, model, request);
  request.grammar = std::move(grammar);
  auto handle = submit_or_throw(model.engine(), std::move(request), "messages");
  return std::make_unique<OllamaGeneration>(std::move(handle), stream, true, model, name, output);
}

Outcome ollama_generate(std::span<const ServedModel* const> models, std::string_view text) {
  const Json body_json = parse_body(text);
  const Fields body(body_json, "");
  const ServedModel& model = pick_model(models, body);
  const std::string name = body.required_string("model");
  const std::string prompt_text = body.string("prompt").value_or("");
  if (prompt_text.empty()) return load_only(name, false, unloads(body));
  if (body.array("images") && !body.array("images")->empty()) throw invalid_field("images", "are not supported");
  if (body.string("suffix").value_or("") != "") throw invalid_field("suffix", "is not supported");
  if (body.get("context")) throw invalid_field("context", "is not supported; send the conversation to /api/chat");
  const bool stream = body.boolean("stream").value_or(true);
  engine::GenerationRequest request;
  if (body.boolean("raw").value_or(false)) {
    request.prompt = model.text_prompt(prompt_text);
  } else {
    // The prompt as one user turn of the model's chat template, after the system text when given.
    Json messages = Json::array();
    if (auto system = body.string("system")) messages.push_back({{"role", "system"}, {"content", *system}});
    messages.push_back({{"role", "user"}, {"content", prompt_text}});
    request.prompt = model.render_chat(messages, Json(), Json()).ids;
  }
  read_options(body, model, request);
  request.grammar = ollama_output_constraint(body, model);
  auto handle = submit_or_throw(model.engine(), std::move(request), "prompt");
  return std::make_unique<OllamaGeneration>(std::move(handle), stream, false, model, name, chat::OutputOptions{});
}

}  // namespace pensieve::api
