#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <mutex>

#include "gguf/gguf_file.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/nfc.h"
#include "tokenizer/regex_splitter.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/string_map.h"

namespace pensieve::tokenizer {

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Spellings of end-of-turn tokens that end generation even when the metadata names another EOS.
constexpr std::array<std::string_view, 11> kEndOfGenerationTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>",         "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
    "<EOT>",      "_<EOT>",     "<|end_of_text|>", "<|return|>",    "<|call|>"};

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  std::size_t pos = 0;
  while (true) {
    std::size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text, pos, std::string_view::npos);
  return out;
}

std::optional<int32_t> parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value *= 16;
    if (c >= '0' && c <= '9') value += c - '0';
    else if (c >= 'A' && c <= 'F') value += c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') value += c - 'a' + 10;
    else return std::nullopt;
  }
  return value;
}

// What a token stands for as bytes, once, at load.
std::string token_bytes(const TokenizerSpec& spec, std::size_t id) {
  const std::string& text = spec.tokens[id];
  TokenKind kind = spec.kinds[id];
  if (kind == TokenKind::Control || kind == TokenKind::UserDefined) return text;
  if (kind == TokenKind::Byte) {
    if (auto b = parse_byte_token(text)) return std::string(1, static_cast<char>(*b));
  }
  if (spec.model == VocabModel::ByteLevelBpe) {
    if (auto raw = byte_level_decode(text)) return *raw;
    return text;
  }
  return replace_all(text, kSpmSpace, " ");
}

}  // namespace

struct Tokenizer::Impl {
  struct Workspace {
    explicit Workspace(const RegexSplitter& splitter) : regex(splitter) {}
    RegexSplitter::Scratch regex;
    BytePairModel::Scratch bpe;
    SentencePieceModel::Scratch spm;
    std::vector<Fragment> fragments;
    std::vector<Piece> pieces;
    std::string text;
  };

  TokenizerSpec spec;
  TextToId text_to_id;
  std::vector<std::string> pieces;  // bytes per token
  std::vector<int32_t> end_of_generation;
  SpecialTokenMatcher specials;
  RegexSplitter splitter{std::vector<std::string>{}};
  BytePairModel bpe;
  SentencePieceModel spm;

  std::mutex pool_mutex;
  std::vector<std::unique_ptr<Workspace>> pool;

  std::unique_ptr<Workspace> acquire() {
    {
      std::lock_guard lock(pool_mutex);
      if (!pool.empty()) {
        auto w = std::move(pool.back());
        pool.pop_back();
        return w;
      }
    }
    return std::make_unique<Workspace>(splitter);
  }
  void release(std::unique_ptr<Workspace> w) {
    std::lock_guard lock(pool_mutex);
    pool.push_back(std::move(w));
  }

  void check_id(int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= spec.tokens.size()) {
      throw TokenizerError("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                           std::to_string(spec.tokens.size()) + ")");
    }
  }

  void encode_text(std::string_view text, bool space_prefix, Workspace& w, std::vector<int32_t>& out) const {
    if (spec.model == VocabModel::SentencePieceBpe) {
      std::string& escaped = w.text;
      escaped.clear();
      if (space_prefix) escaped.append(kSpmSpace);
      for (char c : text) {
        if (c == ' ') escaped.append(kSpmSpace);
        else escaped.push_back(c);
      }
      spm.encode(escaped, w.spm, out);
      return;
    }
    if (spec.normalize_nfc && !is_nfc_or_normalize(text, w.text)) text = w.text;
    if (splitter.empty()) {
      bpe.encode_piece(text, w.bpe, out);
      return;
    }
    splitter.split(text, w.regex, w.pieces);
    for (const Piece& p : w.pieces) bpe.encode_piece(text.substr(p.begin, p.end - p.begin), w.bpe, out);
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_spec(TokenizerSpec spec) {
  if (spec.tokens.empty()) throw TokenizerError("tokenizer has an empty vocabulary");
  if (spec.kinds.size() != spec.tokens.size()) {
    throw TokenizerError("tokenizer has " + std::to_string(spec.kinds.size()) + " token types for " +
                         std::to_string(spec.tokens.size()) + " tokens");
  }
  if (!spec.scores.empty() && spec.scores.size() != spec.tokens.size()) {
    throw TokenizerError("tokenizer has " + std::to_string(spec.scores.size()) + " scores for " +
                         std::to_string(spec.tokens.size()) + " tokens");
  }
  auto n = static_cast<int32_t>(spec.tokens.size());
  for (int32_t* id : {&spec.bos_id, &spec.eos_id, &spec.eot_id, &spec.unk_id, &spec.pad_id}) {
    if (*id >= n) *id = -1;
  }
  auto impl = std::make_unique<Impl>();
  impl->spec = std::move(spec);
  const TokenizerSpec& s = impl->spec;
  impl->text_to_id.reserve(s.tokens.size());
  impl->pieces.reserve(s.tokens.size());
  for (std::size_t id = 0; id < s.tokens.size(); ++id) {
    impl->text_to_id.insert_or_assign(s.tokens[id], static_cast<int32_t>(id));  // later duplicates win
    impl->pieces.push_back(token_bytes(s, id));
  }
  impl->specials = SpecialTokenMatcher(s);
  if (s.model == VocabModel::ByteLevelBpe) {
    impl->splitter = RegexSplitter(s.pre_regexes);
    std::vector<std::string> mergeable(impl->pieces);
    for (std::size_t id = 0; id < mergeable.size(); ++id) {
      if (s.kinds[id] == TokenKind::Control || s.kinds[id] == TokenKind::UserDefined) mergeable[id].clear();
    }
    impl->bpe = BytePairModel(mergeable, impl->text_to_id, s.merges, s.ignore_merges);
  } else {
    impl->spm = SentencePieceModel(impl->text_to_id, s.scores, s.unk_id);
  }
  auto& eog = impl->end_of_generation;
  for (int32_t id : {s.eos_id, s.eot_id}) {
    if (id >= 0) eog.push_back(id);
  }
  for (std::string_view text : kEndOfGenerationTexts) {
    int32_t id = find_id(impl->text_to_id, text);
    if (id >= 0 && s.kinds[id] != TokenKind::Normal) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special, bool add_special) const {
  std::vector<int32_t> out;
  encode_append(text, parse_special, add_special, out);
  return out;
}

void Tokenizer::encode_append(std::string_view text, bool parse_special, bool add_special,
                              std::vector<int32_t>& out) const {
  if (text.size() > 0xFFFFFFF0u) throw TokenizerError("text to tokenize is larger than 4 GiB");
  const Impl& impl = *impl_;
  const TokenizerSpec& s = impl.spec;
  if (add_special && s.add_bos) {
    if (s.bos_id < 0) throw TokenizerError("the vocabulary asks for a BOS token but names none");
    out.push_back(s.bos_id);
  }
  auto workspace = impl_->acquire();
  impl.specials.partition(text, parse_special, workspace->fragments);
  // SPM puts its dummy space before the first text and before text that follows a special token.
  bool previous_was_special = true;
  for (const Fragment& f : workspace->fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      previous_was_special = true;
      continue;
    }
    impl.encode_text(text.substr(f.begin, f.end - f.begin), s.add_space_prefix && previous_was_special, *workspace,
                     out);
    previous_was_special = false;
  }
  impl_->release(std::move(workspace));
  if (add_special && s.add_eos) {
    if (s.eos_id < 0) throw TokenizerError("the vocabulary asks for an EOS token but names none");
    out.push_back(s.eos_id);
  }
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  bool strip_space = strips_leading_space();
  for (int32_t id : ids) {
    impl_->check_id(id);
    if (!render_special && hidden_unless_special(impl_->spec.kinds[id])) continue;
    std::string_view piece = impl_->pieces[id];
    if (strip_space && !piece.empty()) {
      if (piece.front() == ' ') piece.remove_prefix(1);
      strip_space = false;
    }
    out.append(piece);
  }
  return out;
}

std::string_view Tokenizer::token_piece(int32_t id) const {
  impl_->check_id(id);
  return impl_->pieces[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->spec.tokens[id];
}

TokenKind Tokenizer::token_kind(int32_t id) const {
  impl_->check_id(id);
  return impl_->spec.kinds[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view stored_text) const {
  int32_t id = find_id(impl_->text_to_id, stored_text);
  if (id < 0) return std::nullopt;
  return id;
}

namespace {
std::optional<int32_t> optional_id(int32_t id) {
  if (id < 0) return std::nullopt;
  return id;
}
}  // namespace

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->spec.tokens.size()); }
VocabModel Tokenizer::model() const { return impl_->spec.model; }
const std::string& Tokenizer::pre_tokenizer_name() const { return impl_->spec.pre_name; }
std::optional<int32_t> Tokenizer::bos_id() const { return optional_id(impl_->spec.bos_id); }
std::optional<int32_t> Tokenizer::eos_id() const { return optional_id(impl_->spec.eos_id); }
std::optional<int32_t> Tokenizer::eot_id() const { return optional_id(impl_->spec.eot_id); }
std::optional<int32_t> Tokenizer::unk_id() const { return optional_id(impl_->spec.unk_id); }
std::optional<int32_t> Tokenizer::pad_id() const { return optional_id(impl_->spec.pad_id); }
bool Tokenizer::adds_bos() const { return impl_->spec.add_bos; }
bool Tokenizer::adds_eos() const { return impl_->spec.add_eos; }
bool Tokenizer::strips_leading_space() const {
  return impl_->spec.model == VocabModel::SentencePieceBpe && impl_->spec.add_space_prefix;
}
bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::binary_search(impl_->end_of_generation.begin(), impl_->end_of_generation.end(), id);
}
const std::vector<int32_t>& Tokenizer::end_of_generation_ids() const { return impl_->end_of_generation; }
const std::string& Tokenizer::chat_template() const { return impl_->spec.chat_template; }

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) return from_hf_json(path / "tokenizer.json");
  if (path.extension() == ".gguf") return from_gguf(gguf::GgufFile::open(path));
  if (path.extension() == ".json") return from_hf_json(path);
  throw TokenizerError("cannot tell what kind of tokenizer " + path.string() +
                       " is (expected a .gguf file or a tokenizer.json)");
}

}  // namespace pensieve::tokenizer
