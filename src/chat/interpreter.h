#pragma once
// Walks a parsed template and writes its output. One Interpreter per render: it owns that render's variables,
// so concurrent renders of one template never share state.
#include <string>

#include "chat/ast.h"
#include "chat/chat_template.h"

namespace pensieve::chat {

// `context`: a dict of template variables. Throws TemplateError.
std::string interpret(const Body& program, const Value& context, const RenderOptions& options);

}  // namespace pensieve::chat
