#include "chat/tool_call_format.h"

namespace pensieve::chat {

namespace {
bool has(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }
}  // namespace

const char* tool_call_format_name(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::Hermes: return "hermes";
    case ToolCallFormat::Llama3: return "llama3";
    case ToolCallFormat::Mistral: return "mistral";
    case ToolCallFormat::DeepSeek: return "deepseek";
    case ToolCallFormat::Generic: return "generic";
  }
  return "generic";
}

ToolCallFormat detect_tool_call_format(std::string_view t) {
  // Order matters: the most specific markers first (a Hermes-on-Llama template mentions both Llama headers
  // and <tool_call>; the Hermes syntax is what it teaches).
  if (has(t, "[TOOL_CALLS]")) return ToolCallFormat::Mistral;
  if (has(t, "tool\xE2\x96\x81" "call\xE2\x96\x81" "begin")) return ToolCallFormat::DeepSeek;  // tool▁call▁begin
  if (has(t, "<tool_call>")) return ToolCallFormat::Hermes;
  if (has(t, "<|python_tag|>") || (has(t, "<|start_header_id|>") && has(t, "\"parameters\""))) {
    return ToolCallFormat::Llama3;
  }
  return ToolCallFormat::Generic;
}

std::vector<std::string> tool_call_markers(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::Hermes:
    case ToolCallFormat::Generic: return {"<tool_call>", "</tool_call>"};
    case ToolCallFormat::Llama3: return {"<|python_tag|>"};
    case ToolCallFormat::Mistral: return {"[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"};
    case ToolCallFormat::DeepSeek:
      return {"<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "begin\xEF\xBD\x9C>",
              "<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "end\xEF\xBD\x9C>",
              "<\xEF\xBD\x9Ctool\xE2\x96\x81" "call\xE2\x96\x81" "begin\xEF\xBD\x9C>",
              "<\xEF\xBD\x9Ctool\xE2\x96\x81" "call\xE2\x96\x81" "end\xEF\xBD\x9C>",
              "<\xEF\xBD\x9Ctool\xE2\x96\x81" "sep\xEF\xBD\x9C>"};
  }
  return {};
}

bool template_has_reasoning(std::string_view t) { return has(t, "<think>") || has(t, "</think>"); }

}  // namespace pensieve::chat
