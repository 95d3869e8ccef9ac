#include "synth/tokenizer_import.h"

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace pensieve::synth {

using gguf::ArrayValue;
using gguf::MetadataEntry;
using gguf::Value;
using gguf::ValueType;
using nlohmann::json;

namespace {

// Token types as GGUF numbers them (llama_token_type).
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

bool has_gguf_magic(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

ImportedTokenizer import_from_gguf(const std::filesystem::path& path) {
  const gguf::GgufFile file = gguf::GgufFile::open(path);
  ImportedTokenizer out;
  for (const auto& entry : file.metadata()) {
    if (entry.key.starts_with("tokenizer.")) out.entries.push_back(entry);
  }
  const auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty()) {
    throw TokenizerImportError(path.string() + ": GGUF has no tokenizer.ggml.tokens to take a vocabulary from");
  }
  out.n_vocab = tokens->size();
  return out;
}

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerImportError(path.string() + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw TokenizerImportError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

// The converter treats these added tokens as control tokens even when tokenizer.json does not mark them
// special (some models forget to).
bool looks_special(const std::string& text) {
  if (text == "<pad>" || text == "<mask>" || text == "<2mass>" || text == "[@BOS@]") return true;
  auto wrapped = [&](std::string_view open, std::string_view close) {
    return text.size() >= open.size() + close.size() && text.starts_with(open) && text.ends_with(close);
  };
  return wrapped("<|", "|>") || wrapped("<\xef\xbd\x9c", "\xef\xbd\x9c>") || wrapped("<unused", ">");
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// tokenizer.json's Split regex, looked for in the pre-tokenizer (possibly inside a Sequence).
std::optional<std::string> split_regex(const json& pre) {
  if (!pre.is_object()) return std::nullopt;
  if (pre.value("type", "") == "Split" && pre.contains("pattern") && pre["pattern"].contains("Regex")) {
    return pre["pattern"]["Regex"].get<std::string>();
  }
  if (pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
    for (const auto& inner : pre["pretokenizers"]) {
      if (auto r = split_regex(inner)) return r;
    }
  }
  return std::nullopt;
}

std::string merge_text(const json& merge) {
  if (merge.is_string()) return merge.get<std::string>();
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    // Pair form (transformers >= 4.45): a space inside a part is written as U+0120, as the converter does.
    auto encode = [](const std::string& part) { return replace_all(part, " ", "\xc4\xa0"); };
    return encode(merge[0].get<std::string>()) + " " + encode(merge[1].get<std::string>());
  }
  throw TokenizerImportError("tokenizer.json: unknown merges format");
}

std::optional<std::string> token_content(const json& entry) {
  if (entry.is_string()) return entry.get<std::string>();
  if (entry.is_object() && entry.contains("content") && entry["content"].is_string()) {
    return entry["content"].get<std::string>();
  }
  return std::nullopt;
}

Value string_array(std::vector<std::string> items) {
  ArrayValue arr;
  arr.element_type = ValueType::String;
  arr.items.reserve(items.size());
  for (auto& s : items) arr.items.push_back(Value{std::move(s)});
  return Value{std::move(arr)};
}

Value int32_array(const std::vector<int32_t>& items) {
  ArrayValue arr;
  arr.element_type = ValueType::Int32;
  arr.items.reserve(items.size());
  for (int32_t v : items) arr.items.push_back(Value{v});
  return Value{std::move(arr)};
}

// An insertion-ordered map: the converter writes special ids and flags in the order it first learns them.
template <typename T>
struct Ordered {
  std::vector<std::pair<std::string, T>> items;
  bool has(const std::string& k) const {
    for (const auto& [key, v] : items)
      if (key == k) return true;
    return false;
  }
  void set(const std::string& k, T v) {
    for (auto& [key, old] : items)
      if (key == k) {
        old = v;
        return;
      }
    items.emplace_back(k, v);
  }
};

const char* const kSpecialTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

std::string special_id_key(const std::string& typ) {
  static const std::map<std::string, std::string> names = {
      {"bos", "bos_token_id"},     {"eos", "eos_token_id"},     {"unk", "unknown_token_id"},
      {"sep", "seperator_token_id"}, {"pad", "padding_token_id"}, {"cls", "cls_token_id"},
      {"mask", "mask_token_id"}};
  return "tokenizer.ggml." + names.at(typ);
}

struct SpecialTokens {
  Ordered<uint32_t> ids;
  Ordered<bool> add_flags;
};

SpecialTokens read_special_tokens(const json& tokenizer, const json& config, const ModelShape& shape,
                                  uint64_t n_vocab) {
  SpecialTokens out;
  const json empty = json::object();
  const json& added = tokenizer.contains("added_tokens") ? tokenizer["added_tokens"] : empty;
  const bool have_config = config.is_object() && !config.empty();

  std::map<std::string, std::string> contents;  // typ -> token text from tokenizer_config
  for (const char* typ : kSpecialTypes) {
    if (have_config && config.contains(std::string(typ) + "_token")) {
      if (auto c = token_content(config[std::string(typ) + "_token"])) contents[typ] = *c;
    }
  }
  if (!contents.count("bos") && contents.count("cls")) contents["bos"] = contents["cls"];
  if (!contents.count("eos") && contents.count("sep")) contents["eos"] = contents["sep"];

  // A TemplateProcessing post-processor that wraps every sequence in bos/eos means "add them".
  if (tokenizer.contains("post_processor") && tokenizer["post_processor"].is_object()) {
    const json& post = tokenizer["post_processor"];
    std::vector<json> processors;
    if (post.contains("processors") && post["processors"].is_array()) {
      for (const auto& p : post["processors"]) processors.push_back(p);
    } else {
      processors.push_back(post);
    }
    for (const auto& p : processors) {
      if (p.value("type", "") != "TemplateProcessing" || !p.contains("single") || p["single"].size() < 2) continue;
      const json& single = p["single"];
      auto special_id = [](const json& item) -> std::optional<std::string> {
        if (item.contains("SpecialToken") && item["SpecialToken"].contains("id")) {
          return item["SpecialToken"]["id"].get<std::string>();
        }
        return std::nullopt;
      };
      if (auto first = special_id(single.front())) {
        if (!have_config) contents["bos"] = *first;
        out.add_flags.set("bos", *first == contents["bos"] || (contents.count("cls") && *first == contents["cls"]));
      }
      if (auto last = special_id(single.back())) {
        if (!have_config) contents["eos"] = *last;
        out.add_flags.set("eos", *last == contents["eos"]);
      }
    }
  }

  for (const char* typ : kSpecialTypes) {
    const std::string t = typ;
    if (have_config && config.contains("add_" + t + "_token") && config["add_" + t + "_token"].is_boolean()) {
      out.add_flags.set(t, config["add_" + t + "_token"].get<bool>());
    }
    auto it = contents.find(t);
    if (it == contents.end()) continue;
    for (const auto& a : added) {
      if (a.value("content", "") == it->second) {
        const uint64_t id = a.value("id", uint64_t{0});
        if (id < n_vocab && !out.ids.has(t)) out.ids.set(t, static_cast<uint32_t>(id));
        break;
      }
    }
  }
  // What the converter reads from config.json last, for the types still unset.
  if (shape.bos_token_id && !out.ids.has("bos") && *shape.bos_token_id < n_vocab) out.ids.set("bos", *shape.bos_token_id);
  if (shape.eos_token_id && !out.ids.has("eos") && *shape.eos_token_id < n_vocab) out.ids.set("eos", *shape.eos_token_id);
  return out;
}

bool lowercases(const json& normalizer) {
  if (!normalizer.is_object()) return false;
  const std::string type = normalizer.value("type", "");
  if (type == "Lowercase") return true;
  if (type == "BertNormalizer") return normalizer.value("lowercase", true);
  if (type == "Sequence" && normalizer.contains("normalizers")) {
    for (const auto& n : normalizer["normalizers"])
      if (lowercases(n)) return true;
  }
  return false;
}

ImportedTokenizer import_from_tokenizer_json(const std::filesystem::path& path, const ModelShape& shape) {
  const json tokenizer = read_json(path);
  const std::filesystem::path config_path = path.parent_path() / "tokenizer_config.json";
  const json config = std::filesystem::exists(config_path) ? read_json(config_path) : json::object();

  if (!tokenizer.contains("model") || !tokenizer["model"].is_object()) {
    throw TokenizerImportError(path.string() + ": no \"model\" section");
  }
  const json& model = tokenizer["model"];
  const bool byte_level = tokenizer.contains("decoder") && tokenizer["decoder"].is_object() &&
                          tokenizer["decoder"].value("type", "") == "ByteLevel";
  if (model.value("type", "") != "BPE" || model.value("byte_fallback", false) || !byte_level) {
    throw TokenizerImportError(path.string() +
                               ": only byte-level BPE tokenizer.json files can be imported; pass a GGUF instead");
  }

  // Ids: the BPE vocab, then added tokens (which may replace a vocab entry's text at the same id).
  uint64_t n_tokens = 0;
  for (const auto& [text, id] : model["vocab"].items()) n_tokens = std::max<uint64_t>(n_tokens, id.get<uint64_t>() + 1);
  const json added = tokenizer.value("added_tokens", json::array());
  for (const auto& a : added) n_tokens = std::max<uint64_t>(n_tokens, a.value("id", uint64_t{0}) + 1);

  std::string pre;
  if (auto regex = split_regex(tokenizer.value("pre_tokenizer", json::object()))) pre = pre_tokenizer_name_for_regex(*regex);
  if (pre.empty()) pre = shape.tokenizer_pre.empty() ? "default" : shape.tokenizer_pre;

  // The converter sizes the vocabulary by config.json's vocab_size, padding the ids no token uses.
  uint64_t n_vocab = n_tokens;
  if (pre == shape.tokenizer_pre && shape.vocab_size > n_tokens) n_vocab = shape.vocab_size;

  std::vector<std::string> tokens(n_vocab);
  std::vector<int32_t> types(n_vocab, kUnused);
  for (uint64_t i = 0; i < n_vocab; ++i) tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (const auto& [text, id] : model["vocab"].items()) {
    tokens[id.get<uint64_t>()] = text;
    types[id.get<uint64_t>()] = kNormal;
  }
  for (const auto& a : added) {
    const uint64_t id = a.value("id", uint64_t{0});
    const std::string text = a.value("content", "");
    if (a.value("special", false) || looks_special(text)) {
      tokens[id] = text;
      types[id] = kControl;
    } else {
      tokens[id] = replace_all(text, "\xe2\x96\x81", " ");  // user-defined tokens are stored pre-normalized
      types[id] = kUserDefined;
    }
  }

  std::vector<std::string> merges;
  if (model.contains("merges")) {
    merges.reserve(model["merges"].size());
    for (const auto& m : model["merges"]) merges.push_back(merge_text(m));
  }

  ImportedTokenizer out;
  out.n_vocab = n_vocab;
  auto add = [&](std::string key, Value v) { out.entries.push_back(MetadataEntry{std::move(key), std::move(v)}); };
  add("tokenizer.ggml.model", Value{std::string("gpt2")});
  add("tokenizer.ggml.pre", Value{pre});
  add("tokenizer.ggml.tokens", string_array(std::move(tokens)));
  add("tokenizer.ggml.token_type", int32_array(types));
  if (!merges.empty()) add("tokenizer.ggml.merges", string_array(std::move(merges)));

  const SpecialTokens special = read_special_tokens(tokenizer, config, shape, n_vocab);
  for (const auto& [typ, id] : special.ids.items) add(special_id_key(typ), Value{id});
  for (const auto& [typ, flag] : special.add_flags.items) {
    if (typ == "bos" || typ == "eos" || typ == "sep") add("tokenizer.ggml.add_" + typ + "_token", Value{flag});
  }

  json chat_template = config.is_object() ? config.value("chat_template", json()) : json();
  if (chat_template.is_null()) {
    const auto jinja = path.parent_path() / "chat_template.jinja";
    if (std::filesystem::exists(jinja)) {
      std::ifstream in(jinja, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      chat_template = text.str();
    }
  }
  if (chat_template.is_string()) {
    add("tokenizer.chat_template", Value{chat_template.get<std::string>()});
  } else if (chat_template.is_array()) {
    std::vector<std::string> names;
    for (const auto& t : chat_template) {
      const std::string name = t.value("name", "");
      const std::string text = t.value("template", "");
      if (name == "default") {
        add("tokenizer.chat_template", Value{text});
      } else {
        add("tokenizer.chat_template." + name, Value{text});
        names.push_back(name);
      }
    }
    if (!names.empty()) add("tokenizer.chat_templates", string_array(std::move(names)));
  }
  if (lowercases(tokenizer.value("normalizer", json()))) add("tokenizer.ggml.normalizer_lowercase", Value{true});
  return out;
}

}  // namespace

std::string pre_tokenizer_name_for_regex(const std::string& regex) {
  static const std::string llama3 =
      R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
  static const std::string qwen2 =
      R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
  if (regex == llama3) return "llama-bpe";
  if (regex == qwen2) return "qwen2";
  return "";
}

ImportedTokenizer import_tokenizer(const std::filesystem::path& from, const ModelShape& shape) {
  if (!std::filesystem::exists(from)) throw TokenizerImportError(from.string() + ": no such file");
  if (has_gguf_magic(from)) return import_from_gguf(from);
  return import_from_tokenizer_json(from, shape);
}

}  // namespace pensieve::synth
