#pragma once
// Splits a thinking model's output (<think>…</think> then the answer, as Qwen3, QwQ and DeepSeek-R1 write it)
// into Reasoning and Text pieces while it streams. The tags never reach either side, however the pieces split
// them; whitespace around the tags (the "\n\n" after </think>) is dropped.
#include <string>
#include <string_view>
#include <vector>

#include "chat/tool_call_parser.h"

namespace pensieve::chat {

class ReasoningSplitter {
 public:
  // `starts_inside`: the prompt already opened <think> (DeepSeek-R1's generation prompt does), so the output
  // begins with reasoning and only the closing tag will come.
  explicit ReasoningSplitter(bool starts_inside);

  void push(std::string_view text, std::vector<OutputPiece>& out);
  void finish(std::vector<OutputPiece>& out);

 private:
  enum class State { Undecided, Thinking, Answering };
  void emit(OutputPiece::Kind kind, std::string text, std::vector<OutputPiece>& out);

  State state_;
  std::string pending_;
  std::string held_space_;  // trailing whitespace of the current side, dropped at a tag
  bool side_started_ = false;  // the current side has shown something other than whitespace
};

// Whether a rendered prompt ends inside an open <think> block (the output will start with reasoning).
bool prompt_opens_reasoning(std::string_view prompt);

}  // namespace pensieve::chat
