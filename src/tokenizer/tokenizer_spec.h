#pragma once
// Everything a tokenizer is built from, independent of where it was read (GGUF metadata or HF JSON).
#include <cstdint>
#include <string>
#include <vector>

namespace pensieve::tokenizer {

// GGUF token types (tokenizer.ggml.token_type) minus nothing: the numeric values are the file's.
enum class TokenKind : uint8_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

// Kinds that decoding shows only when asked to render special tokens.
constexpr bool hidden_unless_special(TokenKind kind) {
  return kind == TokenKind::Control || kind == TokenKind::Unknown || kind == TokenKind::Unused;
}

enum class VocabModel : uint8_t {
  ByteLevelBpe,      // tokenizer.ggml.model "gpt2": GPT-2 byte alphabet, merges by rank
  SentencePieceBpe,  // tokenizer.ggml.model "llama": U+2581 for spaces, merges by score, <0xXX> byte fallback
};

struct TokenizerSpec {
  VocabModel model = VocabModel::ByteLevelBpe;
  std::vector<std::string> tokens;  // as stored: byte-level alphabet (BPE) or U+2581 for spaces (SPM)
  std::vector<TokenKind> kinds;     // one per token
  std::vector<float> scores;        // SPM merge priorities (empty for BPE)
  std::vector<std::string> merges;  // BPE "left right", rank order
  std::vector<std::string> pre_regexes;  // BPE pre-tokenizer, applied in order
  std::string pre_name;                  // tokenizer.ggml.pre, for display

  bool ignore_merges = false;     // BPE: a piece that is a token is emitted whole
  bool normalize_nfc = false;     // HF "NFC" normalizer
  bool add_space_prefix = false;  // SPM: a space before the first text (and text after a special token)
  bool add_bos = false;
  bool add_eos = false;

  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t eot_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;

  // Special tokens that swallow whitespace next to them when matched in text (HF lstrip / rstrip).
  std::vector<int32_t> lstrip_ids;
  std::vector<int32_t> rstrip_ids;

  std::string chat_template;
};

}  // namespace pensieve::tokenizer
