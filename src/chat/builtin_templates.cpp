#include "chat/builtin_templates.h"

#include <utility>

#include "chat/chat_template.h"

namespace pensieve::chat {

namespace {

// Llama 3 headers; tools are described in a system block and called with the JSON answer Llama 3.x models are
// trained to give ({"name": ..., "parameters": ...}); tool results come back in the "ipython" role.
constexpr std::string_view kLlama3 =
    "{{- bos_token -}}\n"
    "{%- set first = 0 -%}\n"
    "{%- if tools -%}\n"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' -}}\n"
    "{%- if messages[0]['role'] == 'system' -%}{{- messages[0]['content'] + '\\n\\n' -}}{%- endif -%}\n"
    "{{- 'You have access to these functions:\\n\\n' -}}\n"
    "{%- for tool in tools -%}{{- tool | tojson(indent=4) + '\\n\\n' -}}{%- endfor -%}\n"
    "{{- 'To call a function, respond only with a JSON object of the form {\"name\": function name, "
    "\"parameters\": dictionary of argument name and its value}.<|eot_id|>' -}}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if not (tools and loop.first and message['role'] == 'system') -%}\n"
    "{%- set role = 'ipython' if message['role'] == 'tool' else message['role'] -%}\n"
    "{{- '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' -}}\n"
    "{%- if message['tool_calls'] -%}\n"
    "{%- for call in message['tool_calls'] -%}\n"
    "{%- set fn = call['function'] if call['function'] is defined else call -%}\n"
    "{%- if not loop.first -%}{{- '; ' -}}{%- endif -%}\n"
    "{{- '{\"name\": \"' + fn['name'] + '\", \"parameters\": ' + (fn['arguments'] if fn['arguments'] is string "
    "else fn['arguments'] | tojson) + '}' -}}\n"
    "{%- endfor -%}\n"
    "{%- elif message['content'] is string -%}{{- message['content'] -}}\n"
    "{%- endif -%}\n"
    "{{- '<|eot_id|>' -}}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}\n";

// Gemma turns: no system role (it opens the first user turn), the assistant is "model". No tool syntax of its
// own: tools go through the generic parser.
constexpr std::string_view kGemma =
    "{{- bos_token -}}\n"
    "{%- set system = messages[0]['content'] + '\\n\\n' if messages[0]['role'] == 'system' else '' -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if message['role'] != 'system' -%}\n"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}\n"
    "{{- '<start_of_turn>' + role + '\\n' -}}\n"
    "{%- if loop.index0 == 1 and system -%}{{- system -}}{%- endif -%}\n"
    "{{- (message['content'] if message['content'] is string else '') + '<end_of_turn>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}\n";

}  // namespace

std::optional<std::string_view> builtin_template(std::string_view name) {
  if (name == "chatml") return kChatMlTemplate;
  if (name == "llama3") return kLlama3;
  if (name == "gemma") return kGemma;
  return std::nullopt;
}

std::vector<std::string> builtin_template_names() { return {"chatml", "llama3", "gemma"}; }

}  // namespace pensieve::chat
