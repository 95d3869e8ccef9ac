// Tokenizer from a HF tokenizer.json (+ tokenizer_config.json beside it). Supports the byte-level BPE
// layout (GPT-2, Llama 3, Qwen, ...) and SentencePiece-style BPE exports (Llama 2, Mistral); anything the file asks for that is not implemented is
// refused by name rather than silently tokenized differently.
#include <cmath>
#include <fstream>
#include <limits>
#include <unordered_map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::tokenizer {

namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError("cannot open " + path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw TokenizerError(path.string() + ": not valid JSON: " + e.what());
  }
}

std::string escape_literal(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

struct PreTokenizerReading {
  std::vector<std::string> regexes;
  bool byte_level = false;
  bool metaspace = false;
  bool metaspace_prefix = false;
};

void read_pre_tokenizer(const json& node, const std::string& file, PreTokenizerReading& r) {
  if (node.is_null()) return;
  const std::string type = node.value("type", "");
  if (type == "Sequence") {
    for (const auto& child : node.at("pretokenizers")) read_pre_tokenizer(child, file, r);
  } else if (type == "Split") {
    if (node.value("behavior", "") != "Isolated" || node.value("invert", false)) {
      throw TokenizerError(file + ": Split pre-tokenizer with behavior '" + node.value("behavior", "") +
                           "' is not supported (only Isolated)");
    }
    const json& pattern = node.at("pattern");
    if (pattern.contains("Regex")) r.regexes.push_back(pattern["Regex"].get<std::string>());
    else r.regexes.push_back(escape_literal(pattern.at("String").get<std::string>()));
  } else if (type == "ByteLevel") {
    if (node.value("add_prefix_space", false)) {
      throw TokenizerError(file + ": ByteLevel pre-tokenizer with add_prefix_space is not supported");
    }
    r.byte_level = true;
    if (node.value("use_regex", true)) r.regexes.push_back(kGpt2Regex);
  } else if (type == "Metaspace") {
    r.metaspace = true;
    r.metaspace_prefix = node.value("prepend_scheme", node.value("add_prefix_space", true) ? "always" : "never") != "never";
  } else if (type == "Digits") {
    r.regexes.push_back(node.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
  } else {
    throw TokenizerError(file + ": pre-tokenizer '" + type + "' is not supported");
  }
}

struct NormalizerReading {
  bool nfc = false;
  bool prepend_metaspace = false;     // Prepend "▁" (SentencePiece's dummy prefix)
  bool spaces_to_metaspace = false;   // Replace " " -> "▁"
};

constexpr std::string_view kMetaspace = "\xE2\x96\x81";

void read_normalizer(const json& node, const std::string& file, NormalizerReading& r) {
  if (node.is_null()) return;
  const std::string type = node.value("type", "");
  if (type == "NFC") {
    r.nfc = true;
  } else if (type == "Sequence") {
    for (const auto& child : node.at("normalizers")) read_normalizer(child, file, r);
  } else if (type == "Prepend" && node.value("prepend", "") == kMetaspace) {
    r.prepend_metaspace = true;
  } else if (type == "Replace" && node.at("pattern").value("String", "") == " " &&
             node.value("content", "") == kMetaspace) {
    r.spaces_to_metaspace = true;
  } else {
    throw TokenizerError(file + ": normalizer '" + type + "' is not supported");
  }
}

// tokenizer_config.json names special tokens either as a string or as {"content": ...}.
std::optional<std::string> token_content(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return std::nullopt;
}

std::string chat_template_of(const json& config) {
  if (!config.contains("chat_template")) return "";
  const json& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {  // named templates: prefer "default"
    std::string first;
    for (const auto& entry : t) {
      std::string name = entry.value("name", "");
      std::string text = entry.value("template", "");
      if (name == "default") return text;
      if (first.empty()) first = text;
    }
    return first;
  }
  return "";
}

// SentencePiece models exported as HF BPE (Llama 2, Mistral): spaces are U+2581, unknown characters fall back
// to <0xXX> tokens, and merges are given by rank. The SPM merger works by score, so each token gets minus the
// rank of the merge that produces it; tokens no merge produces never take part in merging.
void make_sentencepiece(TokenizerSpec& spec, const json& model, bool dummy_prefix) {
  spec.model = VocabModel::SentencePieceBpe;
  spec.add_space_prefix = dummy_prefix;
  std::unordered_map<std::string, int32_t> id_of;
  for (std::size_t id = 0; id < spec.tokens.size(); ++id) id_of.emplace(spec.tokens[id], static_cast<int32_t>(id));
  spec.scores.assign(spec.tokens.size(), -std::numeric_limits<float>::infinity());
  for (std::size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const std::string& m = spec.merges[rank];
    std::size_t space = m.find(' ', 1);
    if (space == std::string::npos) continue;
    auto it = id_of.find(m.substr(0, space) + m.substr(space + 1));
    if (it != id_of.end() && std::isinf(spec.scores[it->second])) spec.scores[it->second] = -static_cast<float>(rank);
  }
  spec.merges.clear();
  bool byte_fallback = model.value("byte_fallback", false);
  for (std::size_t id = 0; id < spec.tokens.size(); ++id) {
    const std::string& t = spec.tokens[id];
    if (byte_fallback && spec.kinds[id] == TokenKind::Normal && t.size() == 6 && t.compare(0, 3, "<0x") == 0 &&
        t[5] == '>') {
      spec.kinds[id] = TokenKind::Byte;
    }
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = id_of.find(model["unk_token"].get<std::string>());
    if (it != id_of.end()) {
      spec.unk_id = it->second;
      spec.kinds[it->second] = TokenKind::Unknown;
    }
  }
}

}  // namespace

Tokenizer Tokenizer::from_hf_json(const std::filesystem::path& tokenizer_json) {
  const std::string file = tokenizer_json.string();
  json j = read_json(tokenizer_json);
  json config = json::object();
  auto config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) config = read_json(config_path);

  try {
    const json& model = j.at("model");
    if (model.value("type", "BPE") != "BPE") {
      throw TokenizerError(file + ": model type '" + model.value("type", "") + "' is not supported (only BPE)");
    }
    TokenizerSpec spec;
    spec.model = VocabModel::ByteLevelBpe;
    const json& vocab = model.at("vocab");
    std::size_t size = 0;
    for (const auto& [text, id] : vocab.items()) size = std::max<std::size_t>(size, id.get<std::size_t>() + 1);
    for (const auto& added : j.value("added_tokens", json::array())) {
      size = std::max<std::size_t>(size, added.at("id").get<std::size_t>() + 1);
    }
    spec.tokens.assign(size, "");
    spec.kinds.assign(size, TokenKind::Unused);  // holes in the id space stay unused
    for (const auto& [text, id] : vocab.items()) {
      spec.tokens[id.get<std::size_t>()] = text;
      spec.kinds[id.get<std::size_t>()] = TokenKind::Normal;
    }
    for (const auto& added : j.value("added_tokens", json::array())) {
      auto id = added.at("id").get<int32_t>();
      spec.tokens[id] = added.at("content").get<std::string>();
      spec.kinds[id] = added.value("special", false) ? TokenKind::Control : TokenKind::UserDefined;
      if (added.value("lstrip", false)) spec.lstrip_ids.push_back(id);
      if (added.value("rstrip", false)) spec.rstrip_ids.push_back(id);
    }
    for (const auto& m : model.value("merges", json::array())) {
      if (m.is_string()) spec.merges.push_back(m.get<std::string>());
      else spec.merges.push_back(m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
    }
    spec.ignore_merges = model.value("ignore_merges", false);

    PreTokenizerReading pre;
    read_pre_tokenizer(j.value("pre_tokenizer", json()), file, pre);
    NormalizerReading norm;
    read_normalizer(j.value("normalizer", json()), file, norm);
    bool byte_level_decoder = j.contains("decoder") && j["decoder"].is_object() &&
                              j["decoder"].value("type", "") == "ByteLevel";
    if (pre.byte_level || byte_level_decoder) {
      spec.pre_regexes = std::move(pre.regexes);
      spec.normalize_nfc = norm.nfc;
    } else if (norm.spaces_to_metaspace || pre.metaspace || model.value("byte_fallback", false)) {
      make_sentencepiece(spec, model, norm.prepend_metaspace || pre.metaspace_prefix);
    } else {
      throw TokenizerError(file + ": neither a byte-level nor a SentencePiece-style BPE tokenizer");
    }

    auto id_of = [&](const std::optional<std::string>& content) -> int32_t {
      if (!content) return -1;
      for (std::size_t id = 0; id < spec.tokens.size(); ++id) {
        if (spec.tokens[id] == *content && spec.kinds[id] != TokenKind::Unused) return static_cast<int32_t>(id);
      }
      return -1;
    };
    int32_t model_unk = spec.unk_id;
    spec.bos_id = id_of(token_content(config, "bos_token"));
    spec.eos_id = id_of(token_content(config, "eos_token"));
    spec.unk_id = id_of(token_content(config, "unk_token"));
    if (spec.unk_id < 0) spec.unk_id = model_unk;
    spec.pad_id = id_of(token_content(config, "pad_token"));
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
      spec.add_bos = config["add_bos_token"].get<bool>();
    } else if (j.contains("post_processor") && j["post_processor"].is_object() &&
               j["post_processor"].value("type", "") == "TemplateProcessing") {
      const json& single = j["post_processor"].at("single");
      if (!single.empty() && single[0].contains("SpecialToken")) {
        int32_t id = id_of(single[0]["SpecialToken"].at("id").get<std::string>());
        if (id >= 0) {
          spec.add_bos = true;
          if (spec.bos_id < 0) spec.bos_id = id;
        }
      }
    }
    if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean()) {
      spec.add_eos = config["add_eos_token"].get<bool>();
    }
    spec.chat_template = chat_template_of(config);
    spec.pre_name = "tokenizer.json";
    if (spec.model == VocabModel::SentencePieceBpe && !config.contains("add_bos_token")) {
      spec.add_bos = spec.add_bos || spec.bos_id >= 0;  // SentencePiece exports add BOS unless told otherwise
    }
    return from_spec(std::move(spec));
  } catch (const json::exception& e) {
    throw TokenizerError(file + ": unexpected layout: " + e.what());
  }
}

}  // namespace pensieve::tokenizer
