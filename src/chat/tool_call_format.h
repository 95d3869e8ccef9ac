#pragma once
// How a model family writes tool calls in its output, recognized from its chat template (the template shows
// the model the syntax it was trained on, so it is the surest sign of which one it will use).
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::chat {

enum class ToolCallFormat {
  Hermes,    // Qwen2.5, Qwen3, QwQ, Hermes, our ChatML: <tool_call>{"name":…, "arguments":…}</tool_call>, repeated
  Llama3,    // Llama 3.x: the whole answer is {"name":…, "parameters":…}, or <|python_tag|> then such JSON
  Mistral,   // [TOOL_CALLS][{"name":…, "arguments":…}, …]  or  [TOOL_CALLS]name[ARGS]{…} (v11 and later)
  DeepSeek,  // DeepSeek-R1: <｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{…}\n```<｜tool▁call▁end｜>
  Generic,   // unknown template: <tool_call> blocks, or an answer that is a JSON call (object or array of them)
};

const char* tool_call_format_name(ToolCallFormat f);

// The family whose syntax the template writes for assistant tool calls; Generic when none is recognized.
ToolCallFormat detect_tool_call_format(std::string_view chat_template);

// Marker texts of a format that may be control tokens in a vocabulary. The engine hides control tokens from
// the text it streams, so the API layer puts these back (from the token ids) before parsing.
std::vector<std::string> tool_call_markers(ToolCallFormat f);

// Whether the template knows <think>…</think> reasoning (Qwen3, QwQ, DeepSeek-R1, SmolLM3, ...).
bool template_has_reasoning(std::string_view chat_template);

}  // namespace pensieve::chat
