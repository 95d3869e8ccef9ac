#pragma once
// What templates can call on values: attribute and item access (with Python's str/dict/list methods), slicing,
// jinja2's filters and tests. Mutating methods (list.append, dict.update, ...) behave as in HF's
// ImmutableSandboxedEnvironment: they are unsafe, so calling one fails.
#include <optional>
#include <string>
#include <string_view>

#include "chat/value.h"

namespace pensieve::chat {

// Throws TemplateError (Runtime) with "<kind>: <message>".
[[noreturn]] void fail_runtime(std::string_view kind, const std::string& message);
// Throws the UndefinedError an Undefined carries when used where a value is needed.
[[noreturn]] void fail_undefined(const Undefined& u);

Value get_attribute(const Value& object, const std::string& name);  // object must not be Undefined
Value get_item(const Value& object, const Value& key);              // object must not be Undefined
Value slice(const Value& object, const Value& start, const Value& stop, const Value& step);

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args);
bool apply_test(std::string_view name, const Value& input, const CallArgs& args);

// Python's `in`.
bool contains(const Value& container, const Value& item);

// Python string helpers shared by methods and filters.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
std::string ascii_upper(std::string s);
std::string ascii_lower(std::string s);

}  // namespace pensieve::chat
