#pragma once
// Text to token ids and back, exactly as the model's reference tokenizer does it. Built from GGUF metadata
// (tokenizer.ggml.*) or a HF tokenizer.json (+ tokenizer_config.json beside it). Thread-safe: encode and
// decode may be called from several threads at once.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace pensieve::gguf {
class GgufFile;
}

namespace pensieve::tokenizer {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Tokenizer {
 public:
  static Tokenizer from_spec(TokenizerSpec spec);
  static Tokenizer from_gguf(const gguf::GgufFile& file);
  // `tokenizer_json` is a HF tokenizer.json; tokenizer_config.json is read from the same folder if present.
  static Tokenizer from_hf_json(const std::filesystem::path& tokenizer_json);
  // A .gguf file, a tokenizer.json, or a folder holding tokenizer.json.
  static Tokenizer load(const std::filesystem::path& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // parse_special: control tokens written in the text (e.g. "<|eot_id|>") become those tokens; without it they
  // are ordinary text. User-defined added tokens are matched either way, as the references do.
  // add_special: BOS / EOS are added where the vocabulary's metadata says so.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = false, bool add_special = false) const;
  void encode_append(std::string_view text, bool parse_special, bool add_special, std::vector<int32_t>& out) const;

  // Raw bytes of the ids (not necessarily valid UTF-8 when cut mid-character). Control tokens are rendered
  // only with render_special. SPM vocabularies drop the leading space of the first token, as the reference.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  // The bytes one token stands for (controls included, no leading-space rule); throws on a bad id.
  std::string_view token_piece(int32_t id) const;
  // The token as stored in the vocabulary (byte-level alphabet / U+2581 spelling).
  const std::string& token_text(int32_t id) const;
  TokenKind token_kind(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view stored_text) const;

  int32_t vocab_size() const;
  VocabModel model() const;
  const std::string& pre_tokenizer_name() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> eot_id() const;
  std::optional<int32_t> unk_id() const;
  std::optional<int32_t> pad_id() const;
  bool adds_bos() const;
  bool adds_eos() const;
  // SPM with a dummy prefix: decoding drops the first token's leading space.
  bool strips_leading_space() const;
  // Tokens that end generation (EOS, EOT and the usual end-of-turn spellings).
  bool is_end_of_generation(int32_t id) const;
  const std::vector<int32_t>& end_of_generation_ids() const;
  // The model's Jinja chat template; empty when the vocabulary carries none.
  const std::string& chat_template() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pensieve::tokenizer
