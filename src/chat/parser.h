#pragma once
// Template tokens -> statement tree, with jinja2's operator precedence.
#include <string_view>

#include "chat/ast.h"
#include "chat/lexer.h"

namespace pensieve::chat {

// Throws TemplateError (Syntax) naming the line.
Body parse_template(std::string_view source, const LexerOptions& options);

}  // namespace pensieve::chat
