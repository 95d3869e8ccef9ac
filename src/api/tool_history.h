#pragma once
// Tools and tool-call history of both APIs in the one shape chat templates expect (Hugging Face's):
// tools as {"type": "function", "function": {name, description, parameters}}, assistant turns with
// "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": <object>}}], and "tool" turns
// with "tool_call_id", "name" and string content.
#include <string>

#include "api/json_fields.h"

namespace pensieve::api {

// OpenAI `tools`, checked; null when absent or empty.
Json openai_tools(const Fields& body);
// Checks and rewrites the tool parts of OpenAI messages in place: arguments strings become objects (what
// templates render), a null assistant content becomes "", tool messages get the called function's name.
void normalize_openai_tool_history(Json& messages);

// Anthropic `tools` as OpenAI-shaped ones; null when absent or empty.
Json anthropic_tools(const Fields& body);
// Anthropic system + messages (text, tool_use, tool_result, thinking blocks) as template messages.
Json anthropic_template_messages(const Fields& body);

}  // namespace pensieve::api
