// `pensieve tokenize (--model F.gguf | --tokenizer tokenizer.json) (--text S | --file P) [--special] [--bos]
// [--json]` prints the token ids; `pensieve detokenize (--model F | --tokenizer T) --ids 1,2,3 [--special]
// [--json]` prints the text they stand for. Both are for tests and for debugging a model's vocabulary.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command_registry.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::cli {
namespace {

using tokenizer::Tokenizer;

struct Source {
  std::string model;
  std::string tokenizer_json;
};

void add_source_options(CLI::App& sub, Source& source) {
  auto* model = sub.add_option("--model", source.model, "GGUF file whose tokenizer.ggml.* vocabulary is used");
  auto* json = sub.add_option("--tokenizer", source.tokenizer_json, "HF tokenizer.json (tokenizer_config.json beside it)");
  model->excludes(json);
}

Tokenizer load_tokenizer(const Source& source) {
  if (source.model.empty() && source.tokenizer_json.empty()) throw CommandError{"give --model or --tokenizer"};
  const std::string& path = source.model.empty() ? source.tokenizer_json : source.model;
  try {
    return source.model.empty() ? Tokenizer::from_hf_json(path) : Tokenizer::load(path);
  } catch (const std::exception& e) {
    throw CommandError{e.what()};
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CommandError{"cannot read " + path};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<int32_t> parse_ids(const std::string& text, int32_t vocab_size) {
  std::vector<int32_t> ids;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find_first_of(", ", pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    std::size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size()) throw CommandError{"--ids: '" + item + "' is not a token id"};
    if (value < 0 || value >= vocab_size) {
      throw CommandError{"--ids: " + item + " is outside the vocabulary (size " + std::to_string(vocab_size) + ")"};
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

const RegisterCommand kTokenize{
    "tokenize", "Print the token ids of a text", [](CLI::App& sub) {
      auto source = std::make_shared<Source>();
      auto text = std::make_shared<std::string>();
      auto file = std::make_shared<std::string>();
      auto special = std::make_shared<bool>(false);
      auto bos = std::make_shared<bool>(false);
      auto json = std::make_shared<bool>(false);
      add_source_options(sub, *source);
      auto* text_opt = sub.add_option("--text", *text, "Text to tokenize");
      auto* file_opt = sub.add_option("--file", *file, "File whose bytes are tokenized");
      text_opt->excludes(file_opt);
      sub.add_flag("--special", *special, "Match control tokens written in the text (e.g. <|eot_id|>)");
      sub.add_flag("--bos", *bos, "Add BOS/EOS as the vocabulary's metadata says");
      sub.add_flag("--json", *json, "Print a JSON array");
      return [=] {
        if (text_opt->count() == 0 && file->empty()) throw CommandError{"give --text or --file"};
        Tokenizer tok = load_tokenizer(*source);
        std::string input = file->empty() ? *text : read_text_file(*file);
        std::vector<int32_t> ids = tok.encode(input, *special, *bos);
        if (*json) {
          std::printf("%s\n", nlohmann::json(ids).dump().c_str());
        } else {
          std::string line;
          for (std::size_t i = 0; i < ids.size(); ++i) {
            if (i) line += ' ';
            line += std::to_string(ids[i]);
          }
          std::printf("%s\n", line.c_str());
        }
        return 0;
      };
    }};

const RegisterCommand kDetokenize{
    "detokenize", "Print the text that token ids stand for", [](CLI::App& sub) {
      auto source = std::make_shared<Source>();
      auto ids_text = std::make_shared<std::string>();
      auto special = std::make_shared<bool>(false);
      auto json = std::make_shared<bool>(false);
      add_source_options(sub, *source);
      sub.add_option("--ids", *ids_text, "Token ids, comma separated (e.g. 1,2,3)")->required();
      sub.add_flag("--special", *special, "Render control tokens as their text");
      sub.add_flag("--json", *json, "Print a JSON string (invalid UTF-8 replaced by U+FFFD)");
      return [=] {
        Tokenizer tok = load_tokenizer(*source);
        std::string text = tok.decode(parse_ids(*ids_text, tok.vocab_size()), *special);
        if (*json) {
          std::printf("%s\n", nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        } else {
          std::fwrite(text.data(), 1, text.size(), stdout);  // exactly the bytes, no newline added
        }
        return 0;
      };
    }};

}  // namespace
}  // namespace pensieve::cli
