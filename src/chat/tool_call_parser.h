#pragma once
// Tool calls out of generated text, fed piece by piece as the engine streams it. Text outside calls comes out
// as soon as it cannot be the start of call markup; a call comes out whole, once its closing marker (or the end
// of the output) proves it complete and its JSON parses. Markup never reaches the text, however the pieces
// split it; a call that does not parse (or names a tool that was not offered) comes back verbatim as text.
#include <string>
#include <string_view>
#include <vector>

#include "chat/tool_call_format.h"

namespace pensieve::chat {

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object, compact (as OpenAI's function.arguments string)
};

struct OutputPiece {
  enum class Kind { Text, Reasoning, ToolCall };
  Kind kind = Kind::Text;
  std::string text;  // Text, Reasoning
  ToolCall call;     // ToolCall
};

class ToolCallParser {
 public:
  // `tool_names`: the offered tools; a call naming another is treated as text. Empty: any name is accepted.
  ToolCallParser(ToolCallFormat format, std::vector<std::string> tool_names);

  void push(std::string_view text, std::vector<OutputPiece>& out);
  // End of output: what is held back comes out (an unclosed call is parsed as far as it got).
  void finish(std::vector<OutputPiece>& out);

 private:
  struct Region {
    std::string open;   // marker that starts it; empty: a JSON answer at the very start
    std::string close;  // marker that ends it; empty: the end of the output
  };

  void scan(std::vector<OutputPiece>& out, bool at_end);
  void scan_text(std::vector<OutputPiece>& out, bool at_end);
  void end_region(std::string_view body, std::string_view close_seen, std::vector<OutputPiece>& out);
  void emit_text(std::string text, std::vector<OutputPiece>& out);
  bool parse_body(std::string_view body, std::vector<ToolCall>& calls) const;
  bool accept(std::string name, std::string arguments, std::vector<ToolCall>& calls) const;

  ToolCallFormat format_;
  std::vector<std::string> tool_names_;
  std::vector<Region> regions_;
  bool leading_json_;          // this family may answer with a bare JSON call
  std::string pending_;        // text mode: not yet emitted; region mode: the region's body so far
  const Region* open_ = nullptr;
  size_t searched_ = 0;        // region mode: bytes of the body already searched for the closing marker
  std::string held_space_;     // trailing whitespace of the text, dropped if a call follows
  bool started_ = false;       // something other than whitespace was seen
  bool after_call_ = false;    // drop whitespace right after a call
};

// Parses tool calls from a whole output at once: the same rules as streaming.
std::vector<OutputPiece> parse_tool_calls(ToolCallFormat format, std::string_view text,
                                          const std::vector<std::string>& tool_names = {});

// Where the JSON object or array starting at `pos` ends (one past its closing bracket), or npos when it is not
// closed within `s`. Strings and escapes are honoured; nothing else is validated.
size_t json_value_end(std::string_view s, size_t pos);

}  // namespace pensieve::chat
