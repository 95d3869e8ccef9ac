// libFuzzer target for reading model output (build fuzz/ with clang as scripts/fuzz.sh does, then run
// build-fuzz/tool_call_parser_fuzz CORPUS_DIR): the tool-call parser of every family behind the reasoning
// splitter, fed the input whole and in pieces cut where its first byte says. Whole and piecewise readings must
// agree, and every call must carry a name and JSON-object arguments. (A model's output is steerable by whoever
// writes the prompt, so it is as hostile as any request.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/assistant_output.h"

namespace {

using namespace pensieve::chat;

std::vector<OutputPiece> read(const OutputOptions& o, std::string_view text, size_t step) {
  AssistantOutputParser parser(o);
  std::vector<OutputPiece> out;
  for (size_t at = 0; at < text.size(); at += step) parser.push(text.substr(at, step), out);
  parser.finish(out);
  return out;
}

// Adjacent text (or reasoning) pieces joined: how a client accumulates deltas.
std::vector<OutputPiece> merged(std::vector<OutputPiece> pieces) {
  std::vector<OutputPiece> out;
  for (auto& p : pieces) {
    if (!out.empty() && p.kind != OutputPiece::Kind::ToolCall && out.back().kind == p.kind) out.back().text += p.text;
    else out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t step = 1 + data[0] % 16;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (ToolCallFormat f : {ToolCallFormat::Hermes, ToolCallFormat::Llama3, ToolCallFormat::Mistral,
                           ToolCallFormat::DeepSeek, ToolCallFormat::Generic}) {
    OutputOptions o;
    o.tools = true;
    o.format = f;
    o.reasoning = (data[0] & 0x80) != 0;
    o.starts_in_reasoning = (data[0] & 0x40) != 0;
    const auto whole = merged(read(o, text, text.size() + 1));
    const auto pieces = merged(read(o, text, step));
    if (whole.size() != pieces.size()) std::abort();
    for (size_t i = 0; i < whole.size(); ++i) {
      if (whole[i].kind != pieces[i].kind || whole[i].text != pieces[i].text ||
          whole[i].call.name != pieces[i].call.name || whole[i].call.arguments != pieces[i].call.arguments) {
        std::abort();
      }
      if (whole[i].kind == OutputPiece::Kind::ToolCall &&
          (whole[i].call.name.empty() || !nlohmann::json::parse(whole[i].call.arguments).is_object())) {
        std::abort();
      }
    }
  }
  return 0;
}
