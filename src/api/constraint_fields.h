#pragma once
// The request fields that constrain what the model may write, turned into a compiled grammar for the engine:
// OpenAI `response_format` (json_object, json_schema), the `grammar` extension (GBNF text) on every route, and
// forced tool calls (OpenAI tool_choice "required" / a named function, Anthropic tool_choice "any" / "tool"),
// written in the tool-call markup of the model's family (ServedModel::tool_format(), so --chat-template counts).
// A schema or grammar that cannot be compiled is a 400 naming the field and the keyword at fault.
#include <memory>
#include <string>
#include <string_view>

#include "api/json_fields.h"
#include "api/served_model.h"
#include "grammar/token_constraint.h"

namespace pensieve::api {

// nullptr when the request leaves the output free.
std::shared_ptr<grammar::TokenConstraint> openai_output_constraint(const Fields& body, const ServedModel& model);
std::shared_ptr<grammar::TokenConstraint> anthropic_output_constraint(const Fields& body, const ServedModel& model);
// Ollama's `format`: "json" (any object) or a JSON Schema object.
std::shared_ptr<grammar::TokenConstraint> ollama_output_constraint(const Fields& body, const ServedModel& model);

}  // namespace pensieve::api
