#include "chat/assistant_output.h"

namespace pensieve::chat {

namespace {
void append_merged(OutputPiece piece, std::vector<OutputPiece>& out) {
  if (piece.kind != OutputPiece::Kind::ToolCall && !out.empty() && out.back().kind == piece.kind) {
    out.back().text += piece.text;
  } else {
    out.push_back(std::move(piece));
  }
}
}  // namespace

AssistantOutputParser::AssistantOutputParser(const OutputOptions& o) {
  if (o.reasoning) reasoning_ = std::make_unique<ReasoningSplitter>(o.starts_in_reasoning);
  if (o.tools) tools_ = std::make_unique<ToolCallParser>(o.format, o.tool_names);
}

void AssistantOutputParser::route(std::vector<OutputPiece>& split, std::vector<OutputPiece>& out, bool at_end) {
  std::vector<OutputPiece> parsed;
  for (OutputPiece& p : split) {
    if (p.kind == OutputPiece::Kind::Text && tools_) {
      tools_->push(p.text, parsed);
    } else {
      parsed.push_back(std::move(p));
    }
  }
  if (at_end && tools_) tools_->finish(parsed);
  for (OutputPiece& p : parsed) append_merged(std::move(p), out);
}

void AssistantOutputParser::push(std::string_view text, std::vector<OutputPiece>& out) {
  std::vector<OutputPiece> split;
  if (reasoning_) reasoning_->push(text, split);
  else if (!text.empty()) split.push_back({OutputPiece::Kind::Text, std::string(text), {}});
  route(split, out, /*at_end=*/false);
}

void AssistantOutputParser::finish(std::vector<OutputPiece>& out) {
  std::vector<OutputPiece> split;
  if (reasoning_) reasoning_->finish(split);
  route(split, out, /*at_end=*/true);
}

}  // namespace pensieve::chat
