// Tokenizer from GGUF metadata (tokenizer.ggml.*), with the defaults the reference applies when a key is absent.
#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <string_view>

#include "gguf/gguf_file.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::tokenizer {

namespace {

int32_t id_or(const gguf::GgufFile& file, std::string_view key, int32_t fallback) {
  auto v = file.get_int(key);
  return v ? static_cast<int32_t>(*v) : fallback;
}

// Phi-3 GGUFs carry no per-token strip flags; the reference strips whitespace after its special tokens.
void apply_phi3_strip_rules(const gguf::GgufFile& file, TokenizerSpec& spec) {
  std::string name = file.get_string("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  for (std::size_t id = 0; id < spec.tokens.size(); ++id) {
    const std::string& t = spec.tokens[id];
    TokenKind k = spec.kinds[id];
    bool special = k == TokenKind::Control || k == TokenKind::UserDefined || k == TokenKind::Unknown;
    if ((special || t == "</s>") && t != "<unk>" && t != "<s>" && t != "<|endoftext|>") {
      spec.rstrip_ids.push_back(static_cast<int32_t>(id));
    }
  }
}

// Converted files sometimes mark end-of-turn and fill-in-the-middle tokens as ordinary or user-defined; the
// reference treats these spellings as control tokens (so they are matched in text only with parse_special).
// The DeepSeek ones are split into several literals so that no hex escape swallows the letter after it.
void force_control_spellings(TokenizerSpec& spec) {
  static const std::initializer_list<std::string_view> kControl = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "<end_of_utterance>", "<|eom_id|>",
      "<|return|>", "<|call|>", "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>",
      "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>",
      "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>",
      "\xE2\x96\x81<MID>", "<|code_middle|>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>",
      "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
      "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
      "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>"};
  for (std::size_t id = 0; id < spec.tokens.size(); ++id) {
    if (std::find(kControl.begin(), kControl.end(), spec.tokens[id]) != kControl.end()) {
      spec.kinds[id] = TokenKind::Control;
    }
  }
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const gguf::GgufFile& file) {
  auto where = [&](std::string_view what) { return file.name() + ": " + std::string(what); };
  auto model = file.get_string("tokenizer.ggml.model");
  if (!model) throw TokenizerError(where("no tokenizer.ggml.model"));
  auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) throw TokenizerError(where("no tokenizer.ggml.tokens"));

  TokenizerSpec spec;
  spec.tokens = std::move(*tokens);
  const std::size_t n = spec.tokens.size();
  spec.kinds.assign(n, TokenKind::Normal);
  if (auto types = file.get_int_array("tokenizer.ggml.token_type")) {
    if (types->size() != n) throw TokenizerError(where("tokenizer.ggml.token_type length differs from tokens"));
    for (std::size_t i = 0; i < n; ++i) {
      int64_t t = (*types)[i];
      spec.kinds[i] = (t >= 1 && t <= 6) ? static_cast<TokenKind>(t) : TokenKind::Undefined;
    }
  }
  if (auto scores = file.get_float_array("tokenizer.ggml.scores")) {
    if (scores->size() != n) throw TokenizerError(where("tokenizer.ggml.scores length differs from tokens"));
    spec.scores.assign(scores->begin(), scores->end());
  }
  spec.pre_name = file.get_string("tokenizer.ggml.pre").value_or("");

  if (*model == "gpt2") {
    spec.model = VocabModel::ByteLevelBpe;
    auto merges = file.get_string_array("tokenizer.ggml.merges");
    if (!merges) throw TokenizerError(where("byte-level BPE vocabulary without tokenizer.ggml.merges"));
    spec.merges = std::move(*merges);
    PreTokenizerFamily family = pre_tokenizer_family(spec.pre_name);
    spec.pre_regexes = std::move(family.regexes);
    spec.ignore_merges = family.ignore_merges;
    spec.add_bos = family.add_bos;
    spec.bos_id = id_or(file, "tokenizer.ggml.bos_token_id", -1);
    spec.eos_id = id_or(file, "tokenizer.ggml.eos_token_id", -1);
    spec.unk_id = id_or(file, "tokenizer.ggml.unknown_token_id", -1);
  } else if (*model == "llama") {
    spec.model = VocabModel::SentencePieceBpe;
    spec.add_bos = true;
    spec.add_space_prefix = true;
    spec.bos_id = id_or(file, "tokenizer.ggml.bos_token_id", 1);
    spec.eos_id = id_or(file, "tokenizer.ggml.eos_token_id", 2);
    spec.unk_id = id_or(file, "tokenizer.ggml.unknown_token_id", 0);
  } else {
    throw TokenizerError(where("tokenizer model '" + *model + "' is not supported (only gpt2 and llama)"));
  }
  spec.eot_id = id_or(file, "tokenizer.ggml.eot_token_id", -1);
  spec.pad_id = id_or(file, "tokenizer.ggml.padding_token_id", -1);
  spec.add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(spec.add_bos);
  spec.add_eos = file.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  spec.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix").value_or(spec.add_space_prefix);
  spec.chat_template = file.get_string("tokenizer.chat_template").value_or("");
  force_control_spellings(spec);
  apply_phi3_strip_rules(file, spec);
  return from_spec(std::move(spec));
}

}  // namespace pensieve::tokenizer
