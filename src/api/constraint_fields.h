#pragma once
// The request fields that constrain what the model may write, turned into a compiled grammar for the engine:
// OpenAI `response_format` (json_object, json_schema), the `grammar` extension (GBNF text) on every route, and
// forced tool calls (OpenAI tool_choice "required" / a named function, Anthropic tool_choice "any" / "tool"),
// written in the tool-call markup of the model's family. A schema or grammar that cannot be compiled is a 400
// naming the field and the keyword at fault.
#include <memory>
#include <string>
#include <string_view>

#include "api/json_fields.h"
#include "api/served_model.h"
#include "grammar/token_constraint.h"

namespace pensieve::api {

// How a model family writes a tool call, recognized from its chat template.
enum class ToolCallFamily {
  Hermes,   // <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>  (Qwen 2.5 / 3, Hermes, ChatML fallback)
  Llama3,   // {"name": ..., "parameters": {...}}  (Llama 3.1 / 3.2 / 3.3)
  Generic,  // {"name": ..., "arguments": {...}}  (any other template)
};
ToolCallFamily tool_call_family(std::string_view chat_template);

// nullptr when the request leaves the output free.
std::shared_ptr<grammar::TokenConstraint> openai_output_constraint(const Fields& body, const ServedModel& model);
std::shared_ptr<grammar::TokenConstraint> anthropic_output_constraint(const Fields& body, const ServedModel& model);

}  // namespace pensieve::api
