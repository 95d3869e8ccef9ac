#pragma once
// What a chat model's output holds, streamed: its reasoning, its answer text and its tool calls. The reasoning
// splitter runs first (a thinking model calls tools after </think>), then the tool-call parser on the answer.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/reasoning_splitter.h"
#include "chat/tool_call_parser.h"

namespace pensieve::chat {

struct OutputOptions {
  bool reasoning = false;               // split <think>…</think> off
  bool starts_in_reasoning = false;     // the prompt opened <think>
  bool tools = false;                   // parse tool calls
  ToolCallFormat format = ToolCallFormat::Generic;
  std::vector<std::string> tool_names;  // offered tools (calls naming others stay text)
};

class AssistantOutputParser {
 public:
  explicit AssistantOutputParser(const OutputOptions& options);
  // Pieces in output order; consecutive pieces of one kind are merged.
  void push(std::string_view text, std::vector<OutputPiece>& out);
  void finish(std::vector<OutputPiece>& out);

 private:
  void route(std::vector<OutputPiece>& split, std::vector<OutputPiece>& out, bool at_end);

  std::unique_ptr<ReasoningSplitter> reasoning_;
  std::unique_ptr<ToolCallParser> tools_;
};

}  // namespace pensieve::chat
