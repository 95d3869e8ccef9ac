// libFuzzer target: the chat-template engine. The input is a template source, a NUL byte, then a JSON context
// (when the context does not parse, a fixed conversation is used). Parsing and rendering must succeed or throw
// TemplateError: no crash, no sanitizer report, no stack overflow, no other exception.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

using pensieve::chat::ChatTemplate;
using pensieve::chat::TemplateError;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view source = input.substr(0, split);
  nlohmann::ordered_json context;
  if (split != std::string_view::npos) {
    context = nlohmann::ordered_json::parse(input.substr(split + 1), nullptr, /*allow_exceptions=*/false);
  }
  if (!context.is_object()) {
    context = {{"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}}},
               {"add_generation_prompt", true},
               {"bos_token", "<s>"},
               {"eos_token", "</s>"}};
  }
  try {
    const ChatTemplate t(source);
    std::tm pinned{};
    pinned.tm_year = 124;
    pinned.tm_mday = 1;
    (void)t.render(context, {pinned});
  } catch (const TemplateError&) {
  }
  return 0;
}
