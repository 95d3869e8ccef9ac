#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex_splitter.h"

#include <pcre2.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace pensieve::tokenizer {

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  std::string pattern;
  ~Compiled() { pcre2_code_free(code); }
};

struct RegexSplitter::Scratch::State {
  std::vector<pcre2_match_data*> match_data;  // one per pattern
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;
  ~State() {
    for (auto* md : match_data) pcre2_match_data_free(md);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

RegexSplitter::Scratch::Scratch(const RegexSplitter& splitter) : state_(std::make_unique<State>()) {
  for (const auto& p : splitter.patterns_) {
    state_->match_data.push_back(pcre2_match_data_create_from_pattern(p->code, nullptr));
  }
  state_->context = pcre2_match_context_create(nullptr);
  state_->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  pcre2_jit_stack_assign(state_->context, nullptr, state_->jit_stack);
}

RegexSplitter::Scratch::~Scratch() = default;

std::string widen_whitespace_classes(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (e == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        out += '\\';
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

RegexSplitter::RegexSplitter(const std::vector<std::string>& patterns) {
  for (const auto& source : patterns) {
    auto compiled = std::make_unique<Compiled>();
    compiled->pattern = widen_whitespace_classes(source);
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled->pattern.data()), compiled->pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &error,
                                   &error_offset, nullptr);
    if (compiled->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw TokenizerError("pre-tokenizer regex does not compile at offset " + std::to_string(error_offset) + ": " +
                           reinterpret_cast<const char*>(message) + " in " + source);
    }
    compiled->jit = pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE) == 0;
    patterns_.push_back(std::move(compiled));
  }
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

void RegexSplitter::split(std::string_view text, Scratch& scratch, std::vector<Piece>& pieces) const {
  pieces.clear();
  if (text.empty()) return;
  pieces.push_back({0, static_cast<uint32_t>(text.size())});
  auto& next = scratch.spare_;
  for (std::size_t p = 0; p < patterns_.size(); ++p) {
    const Compiled& re = *patterns_[p];
    pcre2_match_data* md = scratch.state_->match_data[p];
    next.clear();
    for (const Piece& piece : pieces) {
      auto subject = reinterpret_cast<PCRE2_SPTR>(text.data() + piece.begin);
      std::size_t length = piece.end - piece.begin;
      std::size_t gap_start = 0;
      std::size_t search = 0;
      while (search <= length) {
        int rc = re.jit ? pcre2_jit_match(re.code, subject, length, search, 0, md, scratch.state_->context)
                        : pcre2_match(re.code, subject, length, search, 0, md, scratch.state_->context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          PCRE2_UCHAR message[256];
          pcre2_get_error_message(rc, message, sizeof message);
          throw TokenizerError(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(message));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md);
        std::size_t m_begin = ovector[0];
        std::size_t m_end = ovector[1];
        if (m_end == m_begin) {  // an empty match splits nothing; step over one character
          if (m_begin >= length) break;
          search = m_begin + utf8_char_length(std::string_view(text.data() + piece.begin, length), m_begin);
          continue;
        }
        if (m_begin > gap_start) {
          next.push_back({piece.begin + static_cast<uint32_t>(gap_start), piece.begin + static_cast<uint32_t>(m_begin)});
        }
        next.push_back({piece.begin + static_cast<uint32_t>(m_begin), piece.begin + static_cast<uint32_t>(m_end)});
        gap_start = search = m_end;
      }
      if (gap_start < length) {
        next.push_back({piece.begin + static_cast<uint32_t>(gap_start), piece.end});
      }
    }
    pieces.swap(next);
  }
}

}  // namespace pensieve::tokenizer
