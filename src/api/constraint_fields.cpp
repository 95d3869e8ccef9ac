#include "api/constraint_fields.h"

#include <optional>
#include <vector>

#include "api/api_error.h"
#include "chat/tool_call_format.h"
#include "grammar/constraint_cache.h"
#include "grammar/gbnf.h"
#include "grammar/grammar_error.h"
#include "grammar/json_schema.h"

namespace pensieve::api {
namespace {

// One tool as the grammar needs it; `field` names its parameters schema in errors.
struct Tool {
  std::string name;
  const Json* parameters = nullptr;  // nullptr: any object
  bool strict = false;
  std::string field;
};

// What the request asks for, as GBNF text, and the field errors should name.
struct Constraint {
  std::string gbnf;
  std::string field;
};

// Keeps the request's one constraint; a second one is a 400 (they cannot both hold).
void set_once(Constraint& c, std::string gbnf, std::string field) {
  if (!c.gbnf.empty()) {
    throw invalid_field(field, "cannot be combined with '" + c.field + "': both constrain the output");
  }
  c.gbnf = std::move(gbnf);
  c.field = std::move(field);
}

// Runs a schema writer, turning its errors into a 400 on `field`.
template <typename Write>
auto schema_step(const std::string& field, Write write) {
  try {
    return write();
  } catch (const grammar::GrammarError& e) {
    throw invalid_field(field, std::string("cannot be enforced: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw invalid_field(field, std::string("cannot be enforced: ") + e.what());
  }
}

// A GBNF literal of `text` (quotes, backslashes and control bytes escaped).
std::string gbnf_literal(std::string_view text) { return grammar::SchemaGrammarWriter::literal(text); }

// {"name": NAME, "KEY": ARGS} as GBNF; `name` is already a GBNF literal, `args` a rule.
std::string json_call(const std::string& name, const std::string& key, const std::string& args) {
  return gbnf_literal("{\"name\": ") + " " + name + " " + gbnf_literal(", \"" + key + "\": ") + " " + args + " " +
         gbnf_literal("}");
}

// Tool calls in the markup the tool-call parser reads for `format` (src/chat/tool_call_parser.cpp), so a
// forced call comes back as tool_calls / tool_use. Markers are written as text: the grammar never emits a
// control token, and the parser reads the text the same way.
std::string tool_calls_gbnf(const std::vector<Tool>& tools, chat::ToolCallFormat format, bool parallel) {
  using chat::ToolCallFormat;
  grammar::SchemaGrammarWriter writer;  // one grammar for every tool: they share the JSON primitives
  const std::vector<std::string> markers = chat::tool_call_markers(format);
  std::string calls;
  for (const Tool& t : tools) {
    grammar::SchemaOptions options;
    options.ignore_unsupported = !t.strict;  // a non-strict tool schema is enforced as far as the grammar can
    const std::string args = schema_step(t.field, [&] {
      return t.parameters ? writer.add_schema(*t.parameters, "args-" + t.name, options) : writer.any_object();
    });
    const std::string name = gbnf_literal(Json(t.name).dump());
    std::string call;
    switch (format) {
      case ToolCallFormat::Hermes:
      case ToolCallFormat::Generic:  // <tool_call> blocks, which the generic parser reads too
        call = gbnf_literal(markers[0] + "\n") + " " + json_call(name, "arguments", args) + " " +
               gbnf_literal("\n" + markers[1]);
        break;
      case ToolCallFormat::Llama3: call = json_call(name, "parameters", args); break;
      case ToolCallFormat::Mistral: call = json_call(name, "arguments", args); break;  // an entry of the array
      case ToolCallFormat::DeepSeek:  // markers: calls begin, calls end, call begin, call end, sep
        call = gbnf_literal(markers[2] + "function" + markers[4] + t.name + "\n```json\n") + " " + args + " " +
               gbnf_literal("\n```" + markers[3]);
        break;
    }
    calls += (calls.empty() ? "" : " | ") + call;
  }
  const std::string one = "( " + calls + " )";
  const auto repeated = [&](const std::string& separator) {
    return parallel ? one + " ( " + gbnf_literal(separator) + " " + one + " )*" : one;
  };
  switch (format) {
    case ToolCallFormat::Hermes:
    case ToolCallFormat::Generic: return writer.text(repeated("\n"));
    case ToolCallFormat::Llama3: return writer.text(one);  // the JSON form holds one call
    case ToolCallFormat::Mistral:
      return writer.text(gbnf_literal(markers[0] + "[") + " " + repeated(", ") + " " + gbnf_literal("]"));
    case ToolCallFormat::DeepSeek:
      return writer.text(gbnf_literal(markers[0]) + " " + repeated("\n") + " " + gbnf_literal(markers[1]));
  }
  return writer.text(one);
}

std::string schema_gbnf(const Json& schema, const std::string& field) {
  if (!schema.is_object() && !schema.is_boolean()) throw invalid_field(field, "must be a JSON Schema object");
  return schema_step(field, [&] { return grammar::json_schema_to_gbnf(schema); });
}

void read_grammar(const Fields& body, Constraint& c) {
  if (auto g = body.string("grammar")) set_once(c, std::move(*g), "grammar");
}

void read_response_format(const Fields& body, Constraint& c) {
  const Json* rf = body.object("response_format");
  if (!rf) return;
  Fields f(*rf, "response_format");
  const std::string type = f.required_string("type");
  if (type == "text") return;
  if (type == "json_object") return set_once(c, grammar::json_object_gbnf(), "response_format");
  if (type != "json_schema") {
    throw invalid_field("response_format.type", "must be 'text', 'json_object' or 'json_schema' (got '" + type + "')");
  }
  const Json* js = f.object("json_schema");
  if (!js) throw invalid_field("response_format.json_schema", "is required with type 'json_schema'");
  Fields j(*js, "response_format.json_schema");
  j.required_string("name");
  j.boolean("strict");  // type-checked; schemas are always enforced strictly
  const Json* schema = j.get("schema");
  set_once(c, schema ? schema_gbnf(*schema, "response_format.json_schema.schema") : grammar::json_object_gbnf(),
           "response_format");
}

// Each entry of "tools" as `one` reads it (nullopt: a kind of tool that is never forced).
template <typename ReadOne>
std::vector<Tool> read_tools(const Fields& body, ReadOne one) {
  std::vector<Tool> out;
  const Json* tools = body.array("tools");
  if (!tools) return out;
  for (size_t i = 0; i < tools->size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "]";
    if (std::optional<Tool> t = one(Fields((*tools)[i], path), path)) out.push_back(std::move(*t));
  }
  return out;
}

std::vector<Tool> openai_tools(const Fields& body) {
  return read_tools(body, [](const Fields& t, const std::string& path) -> std::optional<Tool> {
    if (auto type = t.string("type"); type && *type != "function") return std::nullopt;
    const Json* fn = t.object("function");
    if (!fn) throw invalid_field(path + ".function", "is required");
    Fields f(*fn, path + ".function");
    return Tool{f.required_string("name"), f.object("parameters"), f.boolean("strict").value_or(false),
                path + ".function.parameters"};
  });
}

std::vector<Tool> anthropic_tools(const Fields& body) {
  return read_tools(body, [](const Fields& t, const std::string& path) -> std::optional<Tool> {
    if (auto type = t.string("type"); type && *type != "custom") return std::nullopt;  // server tools run elsewhere
    return Tool{t.required_string("name"), t.object("input_schema"), t.boolean("strict").value_or(false),
                path + ".input_schema"};
  });
}

std::vector<Tool> named(const std::vector<Tool>& tools, const std::string& name, const std::string& field) {
  for (const Tool& t : tools) {
    if (t.name == name) return {t};
  }
  throw invalid_field(field, "names '" + name + "', which is not in 'tools'");
}

void force_tools(const ServedModel& model, const std::vector<Tool>& tools, bool parallel, Constraint& c) {
  if (tools.empty()) throw invalid_field("tool_choice", "forces a tool call, but 'tools' holds no function");
  set_once(c, tool_calls_gbnf(tools, model.tool_format(), parallel), "tool_choice");
}

std::shared_ptr<grammar::TokenConstraint> compile(const ServedModel& model, const Constraint& c) {
  if (c.gbnf.empty()) return nullptr;
  try {
    return model.constraints().get(c.gbnf);
  } catch (const grammar::GrammarError& e) {
    throw invalid_field(c.field, std::string("cannot be compiled: ") + e.what());
  }
}

}  // namespace

std::shared_ptr<grammar::TokenConstraint> openai_output_constraint(const Fields& body, const ServedModel& model) {
  Constraint c;
  read_grammar(body, c);
  read_response_format(body, c);
  if (const Json* choice = body.get("tool_choice")) {
    const std::vector<Tool> tools = openai_tools(body);
    const bool parallel = body.boolean("parallel_tool_calls").value_or(true);
    if (choice->is_string()) {
      const std::string mode = choice->get<std::string>();
      if (mode == "required") {
        force_tools(model, tools, parallel, c);
      } else if (mode != "auto" && mode != "none") {
        throw invalid_field("tool_choice", "must be 'none', 'auto', 'required' or a function (got '" + mode + "')");
      }
    } else if (choice->is_object()) {
      Fields o(*choice, "tool_choice");
      const std::string type = o.required_string("type");
      if (type != "function") throw invalid_field("tool_choice.type", "must be 'function' (got '" + type + "')");
      const Json* fn = o.object("function");
      if (!fn) throw invalid_field("tool_choice.function", "is required");
      const std::string name = Fields(*fn, "tool_choice.function").required_string("name");
      force_tools(model, named(tools, name, "tool_choice.function.name"), parallel, c);
    } else {
      throw invalid_field("tool_choice", "must be a string or an object");
    }
  }
  return compile(model, c);
}

std::shared_ptr<grammar::TokenConstraint> anthropic_output_constraint(const Fields& body, const ServedModel& model) {
  Constraint c;
  read_grammar(body, c);
  if (const Json* choice = body.object("tool_choice")) {
    Fields o(*choice, "tool_choice");
    const std::string type = o.required_string("type");
    const bool parallel = !o.boolean("disable_parallel_tool_use").value_or(false);
    if (type == "any") {
      force_tools(model, anthropic_tools(body), parallel, c);
    } else if (type == "tool") {
      const std::string name = o.required_string("name");
      force_tools(model, named(anthropic_tools(body), name, "tool_choice.name"), parallel, c);
    } else if (type != "auto" && type != "none") {
      throw invalid_field("tool_choice.type", "must be 'auto', 'any', 'tool' or 'none' (got '" + type + "')");
    }
  }
  return compile(model, c);
}

std::shared_ptr<grammar::TokenConstraint> ollama_output_constraint(const Fields& body, const ServedModel& model) {
  Constraint c;
  if (const Json* format = body.get("format")) {
    if (format->is_string()) {
      if (*format == "json") set_once(c, grammar::json_object_gbnf(), "format");
      else if (*format != "") throw invalid_field("format", "must be \"json\" or a JSON Schema object");
    } else {
      set_once(c, schema_gbnf(*format, "format"), "format");
    }
  }
  return compile(model, c);
}

}  // namespace pensieve::api
