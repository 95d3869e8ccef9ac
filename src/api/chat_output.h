#pragma once
// A chat choice's generated text read as the model meant it: reasoning, answer text and tool calls, piece by
// piece as the engine streams events. Tool-call and reasoning markers the engine hid as control tokens are put
// back from the event's token ids first, so the parser sees what the model wrote.
#include <string>
#include <string_view>
#include <vector>

#include "api/served_model.h"
#include "chat/assistant_output.h"

namespace pensieve::api {

// Parser settings for `model`: tool calls are parsed only when `tools` (OpenAI shape) is not null; reasoning
// is split when the model's template knows <think>.
chat::OutputOptions output_options(const ServedModel& model, const Json& tools, bool opens_reasoning);

class ChatOutput {
 public:
  ChatOutput(const ServedModel& model, const chat::OutputOptions& options);
  void push(const engine::GenerationEvent& e, std::vector<chat::OutputPiece>& out);  // also finishes on e.finish

 private:
  const ServedModel& model_;
  chat::AssistantOutputParser parser_;
};

// An id for a tool call: `prefix` + 24 letters and digits, or the 9 alphanumerics Mistral templates demand.
std::string make_tool_call_id(const ServedModel& model, std::string_view prefix);

}  // namespace pensieve::api
