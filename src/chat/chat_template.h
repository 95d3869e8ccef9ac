#pragma once
// A model's chat template: Jinja2 source parsed once, rendered many times (render is const and thread-safe).
// Rendering follows Python jinja2 as HF's apply_chat_template configures it: trim_blocks, lstrip_blocks,
// loop controls, HF's tojson, raise_exception and strftime_now.
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/template_error.h"
#include "chat/value.h"

namespace pensieve::chat {

struct Stmt;

struct RenderOptions {
  // The clock strftime_now reads; local time now when empty. Tests pin it.
  std::optional<std::tm> now;
};

class ChatTemplate {
 public:
  // Parses the source; throws TemplateError (Syntax).
  explicit ChatTemplate(std::string_view source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // `context` is a JSON object of template variables: messages, add_generation_prompt, bos_token, tools, ...
  // Use ordered_json so that tojson writes keys in the caller's order, as Python dicts do.
  // Throws TemplateError (Runtime, or Raised with the template's own message).
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;
  std::string render(const Value& context, const RenderOptions& options = {}) const;  // context: a dict

 private:
  struct Parsed;
  std::unique_ptr<Parsed> parsed_;
};

// The ChatML template used for models that ship none.
extern const std::string_view kChatMlTemplate;

struct TemplateChoice {
  std::string source;
  bool is_fallback = false;  // true: the model had no template and ChatML was chosen (callers log this)
};
// The model's own template when it has a non-empty one, otherwise ChatML.
TemplateChoice choose_template(const std::optional<std::string>& model_template);

// OpenAI-style content parts ([{"type":"text","text":...}, ...]) -> one string, joined by `separator`, for every
// message whose content is such a list. Real templates mostly expect strings (see the fixtures' content_parts
// case). Throws TemplateError for a part that is not text.
nlohmann::ordered_json flatten_content_parts(const nlohmann::ordered_json& messages, std::string_view separator = "\n");

}  // namespace pensieve::chat
