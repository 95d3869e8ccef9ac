// Tokenizer import against the fixtures' real tokenizers, read independently here with nlohmann::json.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "fixture_models.h"
#include "gguf/gguf_file.h"
#include "synth/preset.h"
#include "synth/tokenizer_import.h"

namespace pensieve::synth {
namespace {

using nlohmann::json;
using testing::fixtures;
using testing::read_json_file;

const gguf::Value* entry(const ImportedTokenizer& t, const std::string& key) {
  for (const auto& e : t.entries)
    if (e.key == key) return &e.value;
  return nullptr;
}

std::vector<std::string> keys(const ImportedTokenizer& t) {
  std::vector<std::string> out;
  for (const auto& e : t.entries) out.push_back(e.key);
  return out;
}

std::string string_at(const gguf::Value* array, uint64_t i) { return *array->as_array()->items.at(i).as_string(); }
int64_t int_at(const gguf::Value* array, uint64_t i) { return *array->as_array()->items.at(i).as_int(); }

// What the test reads straight from the fixture files.
struct Reference {
  json tokenizer, config;
  uint64_t n_tokens = 0;
  std::map<std::string, uint64_t> added;  // content -> id
};

Reference reference(const std::string& name) {
  Reference r;
  r.tokenizer = read_json_file(fixtures() / "tokenizers" / name / "tokenizer.json");
  r.config = read_json_file(fixtures() / "tokenizers" / name / "tokenizer_config.json");
  for (const auto& [text, id] : r.tokenizer["model"]["vocab"].items()) r.n_tokens = std::max<uint64_t>(r.n_tokens, id.get<uint64_t>() + 1);
  for (const auto& a : r.tokenizer["added_tokens"]) {
    r.added[a["content"]] = a["id"];
    r.n_tokens = std::max<uint64_t>(r.n_tokens, a["id"].get<uint64_t>() + 1);
  }
  return r;
}

TEST(TokenizerImport, Llama3TokenizerJson) {
  const Reference ref = reference("llama3");
  const auto t = import_tokenizer(fixtures() / "tokenizers/llama3/tokenizer.json", find_preset("demo"));
  ASSERT_EQ(t.n_vocab, ref.n_tokens);
  EXPECT_EQ(*entry(t, "tokenizer.ggml.model")->as_string(), "gpt2");
  EXPECT_EQ(*entry(t, "tokenizer.ggml.pre")->as_string(), "llama-bpe");
  const auto* tokens = entry(t, "tokenizer.ggml.tokens");
  const auto* types = entry(t, "tokenizer.ggml.token_type");
  ASSERT_EQ(tokens->as_array()->items.size(), ref.n_tokens);
  ASSERT_EQ(types->as_array()->items.size(), ref.n_tokens);
  EXPECT_EQ(types->as_array()->element_type, gguf::ValueType::Int32);
  for (const auto& [text, id] : ref.tokenizer["model"]["vocab"].items()) {
    if (id.get<uint64_t>() % 997 != 0) continue;  // a spread sample; the full walk is the code's job
    EXPECT_EQ(string_at(tokens, id), text);
    EXPECT_EQ(int_at(types, id), 1);
  }
  const std::string bos = ref.config["bos_token"], eos = ref.config["eos_token"];
  EXPECT_EQ(*entry(t, "tokenizer.ggml.bos_token_id")->as_uint(), ref.added.at(bos));
  EXPECT_EQ(*entry(t, "tokenizer.ggml.eos_token_id")->as_uint(), ref.added.at(eos));
  EXPECT_EQ(string_at(tokens, ref.added.at(bos)), bos);
  EXPECT_EQ(int_at(types, ref.added.at(bos)), 3);  // control
  const auto* merges = entry(t, "tokenizer.ggml.merges");
  ASSERT_NE(merges, nullptr);
  EXPECT_EQ(merges->as_array()->items.size(), ref.tokenizer["model"]["merges"].size());
  EXPECT_EQ(*entry(t, "tokenizer.chat_template")->as_string(), ref.config["chat_template"].get<std::string>());
  // The converter's key order: model, pre, tokens, types, merges, special ids, chat template.
  EXPECT_EQ(keys(t), (std::vector<std::string>{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                                               "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                                               "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                               "tokenizer.chat_template"}));
}

TEST(TokenizerImport, Qwen3TokenizerJsonPaddedToModelVocab) {
  const Reference ref = reference("qwen3");
  const ModelShape qwen = find_preset("qwen3-0.6b");
  const auto t = import_tokenizer(fixtures() / "tokenizers/qwen3/tokenizer.json", qwen);
  // Qwen3-0.6B's config.json says vocab_size 151936: ids past the tokenizer's become "[PADn]", unused.
  ASSERT_EQ(t.n_vocab, 151936u);
  ASSERT_LT(ref.n_tokens, 151936u);
  const auto* tokens = entry(t, "tokenizer.ggml.tokens");
  const auto* types = entry(t, "tokenizer.ggml.token_type");
  EXPECT_EQ(string_at(tokens, ref.n_tokens), "[PAD" + std::to_string(ref.n_tokens) + "]");
  EXPECT_EQ(int_at(types, 151935), 5);
  EXPECT_EQ(*entry(t, "tokenizer.ggml.pre")->as_string(), "qwen2");

  // Added tokens: special ones are control (3), the others user-defined (4).
  for (const auto& a : ref.tokenizer["added_tokens"]) {
    const uint64_t id = a["id"];
    EXPECT_EQ(string_at(tokens, id), a["content"].get<std::string>());
    const std::string text = a["content"];
    const bool looks_special = text.starts_with("<|") && text.ends_with("|>");
    EXPECT_EQ(int_at(types, id), a["special"].get<bool>() || looks_special ? 3 : 4) << text;
  }
  const std::string eos = ref.config["eos_token"], pad = ref.config["pad_token"];
  EXPECT_EQ(*entry(t, "tokenizer.ggml.eos_token_id")->as_uint(), ref.added.at(eos));
  EXPECT_EQ(*entry(t, "tokenizer.ggml.padding_token_id")->as_uint(), ref.added.at(pad));
  // tokenizer_config has no bos_token: the converter takes config.json's bos_token_id (151643 for Qwen3).
  EXPECT_TRUE(ref.config["bos_token"].is_null());
  EXPECT_EQ(*entry(t, "tokenizer.ggml.bos_token_id")->as_uint(), 151643u);
  EXPECT_EQ(entry(t, "tokenizer.ggml.add_bos_token")->as_bool(), std::optional<bool>(false));
  // Merges come as pairs in this tokenizer.json; GGUF stores "a b".
  const auto& first_merge = ref.tokenizer["model"]["merges"][0];
  EXPECT_EQ(string_at(entry(t, "tokenizer.ggml.merges"), 0),
            first_merge[0].get<std::string>() + " " + first_merge[1].get<std::string>());
  EXPECT_EQ(keys(t), (std::vector<std::string>{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                                               "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                                               "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
                                               "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token",
                                               "tokenizer.chat_template"}));
}

TEST(TokenizerImport, NotPaddedForAnotherFamilysPreset) {
  const Reference ref = reference("qwen3");
  const auto t = import_tokenizer(fixtures() / "tokenizers/qwen3/tokenizer.json", find_preset("llama-3.2-1b"));
  EXPECT_EQ(t.n_vocab, ref.n_tokens);
}

TEST(TokenizerImport, FromGgufCopiesEveryTokenizerKey) {
  const auto path = fixtures() / "models/llama-tiny/llama-tiny-q8_0.gguf";
  const auto file = gguf::GgufFile::open(path);
  const auto t = import_tokenizer(path, find_preset("demo"));
  std::vector<std::string> expected;
  for (const auto& e : file.metadata())
    if (e.key.starts_with("tokenizer.")) expected.push_back(e.key);
  EXPECT_EQ(keys(t), expected);
  EXPECT_EQ(t.n_vocab, file.get_string_array("tokenizer.ggml.tokens")->size());
}

TEST(TokenizerImport, ErrorsAreOneLine) {
  try {
    import_tokenizer(fixtures() / "no/such/tokenizer.json", find_preset("demo"));
    FAIL() << "expected an error";
  } catch (const TokenizerImportError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  EXPECT_THROW(import_tokenizer(fixtures() / "tokenizers/llama3/cases.jsonl", find_preset("demo")), TokenizerImportError);
}

TEST(PreTokenizer, RecognisesKnownRegexesOnly) {
  const Reference llama = reference("llama3");
  const Reference qwen = reference("qwen3");
  EXPECT_EQ(pre_tokenizer_name_for_regex(llama.tokenizer["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]), "llama-bpe");
  EXPECT_EQ(pre_tokenizer_name_for_regex(qwen.tokenizer["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]), "qwen2");
  EXPECT_EQ(pre_tokenizer_name_for_regex("\\s+"), "");
}

}  // namespace
}  // namespace pensieve::synth
