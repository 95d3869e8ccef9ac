#include "api/served_model.h"

#include <chrono>

#include "api/api_error.h"
#include "chat/reasoning_splitter.h"

namespace pensieve::api {

ServedModel::ServedModel(std::string id, engine::Engine& engine, const tokenizer::Tokenizer& tokenizer,
                         std::optional<std::string> chat_template, RequestPolicy policy)
    : id_(std::move(id)),
      names_{id_},
      created_(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count()),
      engine_(engine),
      tokenizer_(tokenizer),
      policy_(policy),
      guard_(tokenizer),
      constraints_(std::make_unique<grammar::ConstraintCache>(tokenizer)) {
  const std::string& own = chat_template ? *chat_template : tokenizer.chat_template();
  chat::TemplateChoice choice = chat::choose_template(own.empty() ? std::nullopt : std::optional<std::string>(own));
  template_ = std::make_unique<chat::ChatTemplate>(choice.source);
  template_is_fallback_ = choice.is_fallback;
  tool_format_ = chat::detect_tool_call_format(choice.source);
  reasons_ = chat::template_has_reasoning(choice.source);
  if (auto bos = tokenizer.bos_id()) bos_text_ = std::string(tokenizer.token_piece(*bos));
  if (auto eos = tokenizer.eos_id()) eos_text_ = std::string(tokenizer.token_piece(*eos));
  std::vector<std::string> markers = chat::tool_call_markers(tool_format_);
  markers.insert(markers.end(), {"<think>", "</think>"});
  for (const std::string& m : markers) {
    auto id = tokenizer.find_token(m);
    if (id && tokenizer::hidden_unless_special(tokenizer.token_kind(*id))) marker_tokens_.emplace_back(*id, m);
  }
}

void ServedModel::add_alias(std::string name) {
  if (!answers_to(name)) names_.push_back(std::move(name));
}

bool ServedModel::answers_to(std::string_view name) const {
  if (answers_every_name_) return true;
  for (const std::string& n : names_) {
    if (n == name) return true;
  }
  // Ollama clients add the default tag to a name ("llama3:latest"); it means the untagged name.
  constexpr std::string_view kLatest = ":latest";
  if (name.size() > kLatest.size() && name.ends_with(kLatest)) return answers_to(name.substr(0, name.size() - kLatest.size()));
  return false;
}

std::string ServedModel::hidden_markers(std::span<const int32_t> tokens) const {
  std::string out;
  for (int32_t t : tokens) {
    for (const auto& [id, text] : marker_tokens_) {
      if (id == t) out += text;
    }
  }
  return out;
}

std::vector<int32_t> ServedModel::chat_prompt(const Json& messages, const Json& tools) const {
  return render_chat(messages, tools, Json()).ids;
}

ServedModel::ChatPrompt ServedModel::render_chat(const Json& messages, const Json& tools, const Json& extra) const {
  const std::string secret = policy_.special_tokens_in_messages ? std::string() : guard_.new_secret();
  Json context = Json::object();
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) context[key] = value;
  }
  context["messages"] = messages;
  context["add_generation_prompt"] = true;
  if (!tools.is_null()) context["tools"] = tools;
  else context.erase("tools");
  // Everything in the context so far came from the client (messages, tools and the chat_template_kwargs in
  // `extra`, keys included): mask it all, so none of it can spell a control token into the prompt.
  if (!secret.empty()) guard_.mask(context, secret);
  context["bos_token"] = bos_text_;
  context["eos_token"] = eos_text_;
  std::string text;
  try {
    text = template_->render(context);
  } catch (const chat::TemplateError& e) {
    // The template's own raise_exception is how templates reject a conversation shape (e.g. roles that
    // do not alternate): the client's fault, so a 400.
    throw ApiError(ErrorKind::InvalidRequest, std::string("chat template: ") + e.what(), "messages");
  }
  std::vector<int32_t> ids = secret.empty() ? tokenizer_.encode(text, /*parse_special=*/true, /*add_special=*/false)
                                            : guard_.encode(text, secret);
  // Templates usually write the BOS text themselves; add it only where the vocabulary wants one and it is missing.
  if (tokenizer_.adds_bos() && tokenizer_.bos_id() && (ids.empty() || ids.front() != *tokenizer_.bos_id())) {
    ids.insert(ids.begin(), *tokenizer_.bos_id());
  }
  return {std::move(ids), reasons_ && chat::prompt_opens_reasoning(text)};
}

std::vector<int32_t> ServedModel::text_prompt(std::string_view text) const {
  return tokenizer_.encode(text, /*parse_special=*/true, /*add_special=*/true);
}

std::vector<int32_t> ServedModel::checked_ids(const Json& ids, const std::string& field) const {
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const Json& v = ids[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tokenizer_.vocab_size()) {
      throw invalid_field(field + "[" + std::to_string(i) + "]",
                          "must be a token id between 0 and " + std::to_string(tokenizer_.vocab_size() - 1));
    }
    out.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return out;
}

const ServedModel& pick_model(std::span<const ServedModel* const> models, const Fields& body) {
  const std::string name = body.required_string("model");
  for (const ServedModel* m : models) {
    if (m->answers_to(name)) return *m;
  }
  throw ApiError(ErrorKind::NotFound, "model '" + name + "' does not exist; GET /v1/models lists the served ones",
                 "model");
}

}  // namespace pensieve::api
