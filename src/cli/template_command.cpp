// `pensieve template (--model F.gguf | --template F.jinja) --context C.json`: the prompt a model's chat template
// makes of a conversation, byte for byte (nothing is added after it), for debugging templates and for tests.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "cli/command_registry.h"
#include "gguf/gguf_file.h"

namespace pensieve::cli {
namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CommandError{"cannot open " + path};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "YYYY-MM-DD HH:MM:SS" -> the clock strftime_now reads.
std::tm parse_time(const std::string& text) {
  std::tm t{};
  std::istringstream in(text);
  in >> std::get_time(&t, "%Y-%m-%d %H:%M:%S");
  if (in.fail()) throw CommandError{"--now: expected 'YYYY-MM-DD HH:MM:SS', got '" + text + "'"};
  t.tm_isdst = -1;
  std::tm normalized = t;
  if (std::mktime(&normalized) != -1) t = normalized;  // fills in weekday and day of year for %a, %j
  return t;
}

std::string model_template_source(const std::string& model_path) {
  try {
    auto file = gguf::GgufFile::open(model_path);
    chat::TemplateChoice choice = chat::choose_template(file.get_string("tokenizer.chat_template"));
    if (choice.is_fallback) {
      std::fprintf(stderr, "pensieve: %s has no tokenizer.chat_template; using the ChatML fallback\n", model_path.c_str());
    }
    return choice.source;
  } catch (const gguf::GgufError& e) {
    throw CommandError{e.what()};
  }
}

int run_template(const std::string& model_path, const std::string& template_path, const std::string& context_path,
                 const std::string& now, bool flatten) {
  const std::string source = model_path.empty() ? read_text_file(template_path) : model_template_source(model_path);
  nlohmann::ordered_json context;
  try {
    context = nlohmann::ordered_json::parse(read_text_file(context_path));
  } catch (const nlohmann::json::parse_error& e) {
    throw CommandError{context_path + ": " + e.what()};
  }
  if (!context.is_object()) throw CommandError{context_path + ": the context must be a JSON object"};
  if (flatten && context.contains("messages")) {
    context["messages"] = chat::flatten_content_parts(context["messages"]);
  }
  chat::RenderOptions options;
  if (!now.empty()) options.now = parse_time(now);
  try {
    const chat::ChatTemplate tmpl(source);
    const std::string prompt = tmpl.render(context, options);
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    return 0;
  } catch (const chat::TemplateError& e) {
    throw CommandError{std::string(e.raised_by_template() ? "the template raised: " : "template: ") + e.what()};
  }
}

const RegisterCommand kTemplate{
    "template", "Render a chat template with the given variables and print the prompt", [](CLI::App& sub) {
      auto model = std::make_shared<std::string>();
      auto template_file = std::make_shared<std::string>();
      auto context = std::make_shared<std::string>();
      auto now = std::make_shared<std::string>();
      auto flatten = std::make_shared<bool>(false);
      auto* model_opt = sub.add_option("--model", *model, "GGUF file whose tokenizer.chat_template is used");
      auto* template_opt = sub.add_option("--template", *template_file, "Jinja template file");
      model_opt->excludes(template_opt);
      sub.add_option("--context", *context, "JSON file holding an object of template variables (messages, tools, ...)")->required();
      sub.add_option("--now", *now, "Pin strftime_now's clock: 'YYYY-MM-DD HH:MM:SS'");
      sub.add_flag("--flatten-content", *flatten, "Join text content parts into one string per message first");
      return [=] {
        if (model->empty() && template_file->empty()) throw CommandError{"give --model or --template"};
        return run_template(*model, *template_file, *context, *now, *flatten);
      };
    }};

}  // namespace
}  // namespace pensieve::cli
