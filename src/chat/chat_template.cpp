#include "chat/chat_template.h"

#include "chat/ast.h"
#include "chat/interpreter.h"
#include "chat/parser.h"

namespace pensieve::chat {

struct ChatTemplate::Parsed {
  Body program;
};

ChatTemplate::ChatTemplate(std::string_view source)
    : parsed_(std::make_unique<Parsed>(Parsed{parse_template(source, LexerOptions{})})) {}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  if (!context.is_object()) {
    throw TemplateError(TemplateError::Kind::Runtime, "TypeError: the template context must be a JSON object");
  }
  return render(from_json(context), options);
}

std::string ChatTemplate::render(const Value& context, const RenderOptions& options) const {
  return interpret(parsed_->program, context, options);
}

// The widely used ChatML layout: <|im_start|>role\ncontent<|im_end|>\n per message.
const std::string_view kChatMlTemplate =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "{{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}\n";

TemplateChoice choose_template(const std::optional<std::string>& model_template) {
  if (model_template && !model_template->empty()) return {*model_template, false};
  return {std::string(kChatMlTemplate), true};
}

nlohmann::ordered_json flatten_content_parts(const nlohmann::ordered_json& messages, std::string_view separator) {
  nlohmann::ordered_json out = messages;
  if (!out.is_array()) return out;
  for (auto& message : out) {
    if (!message.is_object() || !message.contains("content") || !message["content"].is_array()) continue;
    std::string text;
    bool first = true;
    for (const auto& part : message["content"]) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
        std::string type = part.is_object() && part.contains("type") ? part["type"].dump() : part.dump();
        throw TemplateError(TemplateError::Kind::Runtime,
                            "unsupported message content part " + type + ": only text parts can be flattened");
      }
      if (!first) text += separator;
      first = false;
      text += part["text"].get<std::string>();
    }
    message["content"] = text;
  }
  return out;
}

}  // namespace pensieve::chat
