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

// The widely used ChatML layout: <|im_start|>role\ncontent<|im_end|>\n per message. With tools, a first system
// block lists them and asks for calls in <tool_call> tags (the Hermes syntax most ChatML-trained models know);
// assistant tool calls in the history are written back the same way.
const std::string_view kChatMlTemplate =
    "{%- if tools -%}\n"
    "{{- '<|im_start|>system\\n' -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}{{- messages[0]['content'] + '\\n\\n' -}}{%- endif -%}\n"
    "{{- '# Tools\\n\\nYou may call functions. Their signatures, one JSON object per line:\\n<tools>\\n' -}}\n"
    "{%- for tool in tools -%}{{- tool | tojson + '\\n' -}}{%- endfor -%}\n"
    "{{- '</tools>\\n\\nTo call one, write a JSON object with its name and arguments between tags, one block per "
    "call:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": <arguments-object>}\\n</tool_call><|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if not (tools and loop.first and message['role'] == 'system') -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] if message['content'] is string else '') -}}\n"
    "{%- if message['tool_calls'] -%}\n"
    "{%- for call in message['tool_calls'] -%}\n"
    "{%- set fn = call['function'] if call['function'] is defined else call -%}\n"
    "{%- if message['content'] or not loop.first -%}{{- '\\n' -}}{%- endif -%}\n"
    "{{- '<tool_call>\\n{\"name\": \"' + fn['name'] + '\", \"arguments\": ' + (fn['arguments'] if fn['arguments'] is "
    "string else fn['arguments'] | tojson) + '}\\n</tool_call>' -}}\n"
    "{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
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
