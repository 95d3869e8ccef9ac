#pragma once
// Chat templates pensieve ships, for GGUF files without one (`serve --chat-template NAME`). Each renders tools
// and tool calls in the syntax its family's parser reads back.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pensieve::chat {

// The source of the built-in template called `name` ("chatml", "llama3", "gemma"), if there is one.
std::optional<std::string_view> builtin_template(std::string_view name);
std::vector<std::string> builtin_template_names();

}  // namespace pensieve::chat
