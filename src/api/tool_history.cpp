#include "api/tool_history.h"

#include <map>

#include "api/api_error.h"

namespace pensieve::api {

namespace {

std::string index_path(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// A function name as OpenAI allows it: letters, digits, '_' and '-', at most 64.
void check_function_name(const std::string& name, const std::string& path) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  if (!ok) throw invalid_field(path, "must be 1 to 64 letters, digits, '_', '-' or '.'");
}

Json function_tool(const std::string& name, const Json* description, const Json* parameters) {
  Json fn = {{"name", name}};
  if (description) fn["description"] = *description;
  fn["parameters"] = parameters ? *parameters : Json{{"type", "object"}, {"properties", Json::object()}};
  return {{"type", "function"}, {"function", std::move(fn)}};
}

// Text of a tool result or system prompt: a string, or text blocks joined by "\n".
std::string block_text(const Json& content, const std::string& path) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw invalid_field(path, "must be a string or an array of text blocks, not " + type_name(content));
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    Fields block(content[i], index_path(path, i));
    const std::string type = block.required_string("type");
    if (type != "text") {
      throw invalid_field(index_path(path, i) + ".type", "'" + type + "' is not supported here; only text blocks are");
    }
    if (i) text += "\n";
    text += block.required_string("text");
  }
  return text;
}

// The body's `tools`, each checked and converted by `convert(tool fields, its path, its JSON)`; null when none.
template <typename Convert>
Json each_tool(const Fields& body, Convert&& convert) {
  const Json* tools = body.array("tools");
  if (!tools || tools->empty()) return nullptr;
  Json out = Json::array();
  for (size_t i = 0; i < tools->size(); ++i) {
    const std::string path = index_path("tools", i);
    out.push_back(convert(Fields((*tools)[i], path), path, (*tools)[i]));
  }
  return out;
}

}  // namespace

Json openai_tools(const Fields& body) {
  return each_tool(body, [](const Fields& tool, const std::string& path, const Json& raw) {
    const std::string type = tool.required_string("type");
    if (type != "function") throw invalid_field(path + ".type", "must be 'function' (got '" + type + "')");
    const Json* fn_json = tool.object("function");
    if (!fn_json) throw invalid_field(path + ".function", "is required");
    Fields fn(*fn_json, path + ".function");
    const std::string name = fn.required_string("name");
    check_function_name(name, path + ".function.name");
    fn.string("description");
    fn.object("parameters");
    fn.boolean("strict");
    return raw;
  });
}

void normalize_openai_tool_history(Json& messages) {
  std::map<std::string, std::string> called;  // tool call id -> function name
  for (size_t i = 0; i < messages.size(); ++i) {
    Json& msg = messages[i];
    const std::string path = index_path("messages", i);
    const std::string role = msg["role"];
    if (role == "assistant" && msg.contains("tool_calls") && !msg["tool_calls"].is_null()) {
      if (!msg["tool_calls"].is_array()) throw invalid_field(path + ".tool_calls", "must be an array");
      Json calls = Json::array();
      for (size_t c = 0; c < msg["tool_calls"].size(); ++c) {
        const std::string call_path = path + ".tool_calls[" + std::to_string(c) + "]";
        Fields call(msg["tool_calls"][c], call_path);
        const std::string id = call.required_string("id");
        if (auto type = call.string("type"); type && *type != "function") {
          throw invalid_field(call_path + ".type", "must be 'function'");
        }
        const Json* fn_json = call.object("function");
        if (!fn_json) throw invalid_field(call_path + ".function", "is required");
        Fields fn(*fn_json, call_path + ".function");
        const std::string name = fn.required_string("name");
        Json arguments = Json::object();
        if (const Json* a = fn.get("arguments")) {
          if (a->is_string()) {
            // Templates render arguments as an object (tojson); a string that is no JSON object stays as it is.
            Json parsed = Json::parse(a->get<std::string>(), nullptr, /*allow_exceptions=*/false);
            arguments = parsed.is_object() ? std::move(parsed) : *a;
          } else if (a->is_object()) {
            arguments = *a;
          } else {
            throw invalid_field(call_path + ".function.arguments", "must be a string of JSON");
          }
        }
        called[id] = name;
        calls.push_back({{"id", id}, {"type", "function"},
                         {"function", {{"name", name}, {"arguments", std::move(arguments)}}}});
      }
      msg["tool_calls"] = std::move(calls);
      if (!msg.contains("content") || msg["content"].is_null()) msg["content"] = "";
    } else if (role == "tool") {
      Fields m(msg, path);
      const std::string id = m.required_string("tool_call_id");
      if (!msg.contains("name")) {
        if (auto it = called.find(id); it != called.end()) msg["name"] = it->second;
      }
    } else if (role == "assistant" && msg["content"].is_null()) {
      msg["content"] = "";
    }
  }
}

Json anthropic_tools(const Fields& body) {
  return each_tool(body, [](const Fields& tool, const std::string& path, const Json&) {
    if (auto type = tool.string("type"); type && *type != "custom") {
      throw invalid_field(path + ".type", "'" + *type + "' is not supported; only custom tools (name, input_schema) are");
    }
    const std::string name = tool.required_string("name");
    check_function_name(name, path + ".name");
    tool.string("description");
    const Json* schema = tool.object("input_schema");
    if (!schema) throw invalid_field(path + ".input_schema", "is required");
    return function_tool(name, tool.get("description"), schema);
  });
}

Json anthropic_template_messages(const Fields& body) {
  Json out = Json::array();
  if (const Json* system = body.get("system")) {
    out.push_back({{"role", "system"}, {"content", block_text(*system, "system")}});
  }
  const Json& messages = body.required_array("messages");
  if (messages.empty()) throw invalid_field("messages", "must hold at least one message");
  std::map<std::string, std::string> called;  // tool_use id -> tool name
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string path = index_path("messages", i);
    Fields m(messages[i], path);
    const std::string role = m.required_string("role");
    if (role != "user" && role != "assistant") {
      throw invalid_field(path + ".role", "must be 'user' or 'assistant' (got '" + role + "')");
    }
    const Json* content = m.get("content");
    if (!content) throw invalid_field(path + ".content", "is required");
    if (content->is_string()) {
      out.push_back({{"role", role}, {"content", *content}});
      continue;
    }
    if (!content->is_array()) {
      throw invalid_field(path + ".content", "must be a string or an array of content blocks, not " + type_name(*content));
    }
    std::string text;
    bool has_text = false;
    Json calls = Json::array();
    std::string thinking;
    // A user turn's text between tool results becomes its own user message, in order.
    const auto flush_user_text = [&] {
      if (has_text) out.push_back({{"role", "user"}, {"content", text}});
      text.clear();
      has_text = false;
    };
    for (size_t b = 0; b < content->size(); ++b) {
      const std::string block_path = path + ".content[" + std::to_string(b) + "]";
      Fields block((*content)[b], block_path);
      const std::string type = block.required_string("type");
      if (type == "text") {
        if (has_text) text += "\n";
        text += block.required_string("text");
        has_text = true;
      } else if (type == "tool_use" && role == "assistant") {
        const std::string id = block.required_string("id");
        const std::string name = block.required_string("name");
        const Json* input = block.object("input");
        called[id] = name;
        calls.push_back({{"id", id}, {"type", "function"},
                         {"function", {{"name", name}, {"arguments", input ? *input : Json::object()}}}});
      } else if (type == "tool_result" && role == "user") {
        flush_user_text();
        const std::string id = block.required_string("tool_use_id");
        std::string result = block.get("content") ? block_text(*block.get("content"), block_path + ".content") : "";
        // Templates have no error flag; the model reads it in the text.
        if (block.boolean("is_error").value_or(false)) result = "Error: " + result;
        Json tool = {{"role", "tool"}, {"tool_call_id", id}};
        if (auto it = called.find(id); it != called.end()) tool["name"] = it->second;
        tool["content"] = std::move(result);
        out.push_back(std::move(tool));
      } else if (type == "thinking" && role == "assistant") {
        thinking += block.required_string("thinking");
      } else if (type == "redacted_thinking" && role == "assistant") {
        // Opaque by definition: nothing a template could render.
      } else {
        throw invalid_field(block_path + ".type", "'" + type + "' is not supported in a " + role + " message");
      }
    }
    if (role == "user") {
      flush_user_text();
      continue;
    }
    Json msg = {{"role", "assistant"}, {"content", text}};
    if (!calls.empty()) msg["tool_calls"] = std::move(calls);
    if (!thinking.empty()) msg["reasoning_content"] = thinking;
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace pensieve::api
