#pragma once
// A model as the API layer sees it: the name clients ask for, the engine that runs it, and what turns
// messages into prompt tokens (its tokenizer and chat template).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/json_fields.h"
#include "api/special_text.h"
#include "chat/chat_template.h"
#include "chat/tool_call_format.h"
#include "engine/serving_engine.h"
#include "grammar/constraint_cache.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::api {

// Per-request bounds and policies the server applies to every request for a model.
struct RequestPolicy {
  int default_max_tokens = 4096;  // when a request names no max_tokens (0: the rest of the context)
  int max_tokens_limit = 0;       // the most a request may ask for; more is clamped (0: the context)
  // Control-token spellings in message text become those tokens (off: they are plain text, as they should be).
  bool special_tokens_in_messages = false;
};

class ServedModel {
 public:
  // The tokenizer and engine must outlive this. The chat template is `chat_template` when given (serve
  // --chat-template), else the model's own, or ChatML when it has none.
  ServedModel(std::string id, engine::Engine& engine, const tokenizer::Tokenizer& tokenizer,
              std::optional<std::string> chat_template = std::nullopt, RequestPolicy policy = {});

  const std::string& id() const { return id_; }
  // More names clients may ask for (serve --alias given several times).
  void add_alias(std::string name);
  const std::vector<std::string>& names() const { return names_; }
  bool answers_to(std::string_view name) const;
  // serve --default-model: this model answers requests that name a model the server does not have.
  void answer_every_name() { answers_every_name_ = true; }
  int64_t created() const { return created_; }
  engine::Engine& engine() const { return engine_; }
  const tokenizer::Tokenizer& tokenizer() const { return tokenizer_; }
  bool template_is_fallback() const { return template_is_fallback_; }
  // How this model writes tool calls and whether it thinks in <think> tags, read from its chat template.
  chat::ToolCallFormat tool_format() const { return tool_format_; }
  bool reasons() const { return reasons_; }
  // Compiled output grammars for this model's vocabulary (constrained decoding), shared by its requests.
  grammar::ConstraintCache& constraints() const { return *constraints_; }
  const RequestPolicy& policy() const { return policy_; }

  // Renders the chat template over `messages` (each content already a string or null) with the generation
  // prompt and tokenizes the result: control tokens come from the template's markup only, never from the
  // client's text (unless the policy allows it). `tools` is passed when not null.
  std::vector<int32_t> chat_prompt(const Json& messages, const Json& tools) const;
  struct ChatPrompt {
    std::vector<int32_t> ids;
    bool opens_reasoning = false;  // the rendered prompt ends inside <think>
  };
  // The same with more template variables (chat_template_kwargs, enable_thinking); they cannot replace
  // messages, tools, add_generation_prompt or the BOS / EOS texts, and are masked like the messages.
  ChatPrompt render_chat(const Json& messages, const Json& tools, const Json& extra_variables) const;
  // The text of the tool-call and reasoning markers among `tokens` that the engine hid as control tokens.
  std::string hidden_markers(std::span<const int32_t> tokens) const;
  // A raw completion prompt: BOS where the vocabulary adds one, special tokens parsed.
  std::vector<int32_t> text_prompt(std::string_view text) const;
  // Token ids given by the client, checked against the vocabulary; `field` names them in errors.
  std::vector<int32_t> checked_ids(const Json& ids, const std::string& field) const;

 private:
  std::string id_;
  std::vector<std::string> names_;
  bool answers_every_name_ = false;
  int64_t created_;
  engine::Engine& engine_;
  const tokenizer::Tokenizer& tokenizer_;
  RequestPolicy policy_;
  SpecialTextGuard guard_;
  std::unique_ptr<chat::ChatTemplate> template_;
  bool template_is_fallback_ = false;
  chat::ToolCallFormat tool_format_ = chat::ToolCallFormat::Generic;
  bool reasons_ = false;
  std::vector<std::pair<int32_t, std::string>> marker_tokens_;
  std::string bos_text_;
  std::string eos_text_;
  std::unique_ptr<grammar::ConstraintCache> constraints_;
};

// The model named by the body's "model" field. Required: a missing one is a 400, an unknown one a 404.
const ServedModel& pick_model(std::span<const ServedModel* const> models, const Fields& body);

}  // namespace pensieve::api
