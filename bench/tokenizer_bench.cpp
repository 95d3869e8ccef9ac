// Tokenizer throughput: ~1 MB of mixed text (English-like prose, C++-like code, CJK) through the Llama 3
// tokenizer.json from the shared fixtures, on one thread. The text is generated deterministically here so
// that no large file lives in git. Prints MB/s for a cold first pass (empty piece cache) and warm passes.
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

using pensieve::tokenizer::Tokenizer;

class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed) {}
  uint32_t next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state_ >> 33);
  }
  uint32_t below(uint32_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// Words built from syllables, so the vocabulary of the prose is large (the piece cache cannot hold it all).
std::string prose_word(Lcg& rng) {
  static const char* const kSyllables[] = {"th", "e", "an", "ing", "re", "on", "ti", "er", "al", "st", "pro",
                                           "com", "ment", "ver", "ly", "un", "di", "ca", "tion", "o", "a",
                                           "per", "ex", "ble", "in", "for", "gen", "ra", "mo", "sy"};
  static const char* const kCommon[] = {"the", "of", "and", "to", "in", "is", "that", "it", "was", "for",
                                        "on", "are", "with", "as", "they", "be", "at", "one", "have", "this"};
  if (rng.below(2) == 0) return kCommon[rng.below(20)];
  std::string w;
  for (uint32_t i = 0, n = 1 + rng.below(4); i < n; ++i) w += kSyllables[rng.below(30)];
  if (rng.below(10) == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
  return w;
}

void append_prose(Lcg& rng, std::string& out) {
  for (uint32_t s = 0, sentences = 3 + rng.below(5); s < sentences; ++s) {
    std::string sentence = prose_word(rng);
    sentence[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(sentence[0])));
    for (uint32_t i = 0, n = 6 + rng.below(14); i < n; ++i) {
      sentence += (rng.below(9) == 0) ? ", " : " ";
      sentence += prose_word(rng);
      if (rng.below(25) == 0) {
        sentence += ' ';
        sentence += std::to_string(rng.below(100000));
      }
    }
    out += sentence + (rng.below(6) == 0 ? "? " : ". ");
  }
  out += "\n\n";
}

void append_code(Lcg& rng, std::string& out) {
  static const char* const kNames[] = {"count", "buffer", "index", "total", "value", "node", "result", "size"};
  std::string fn = kNames[rng.below(8)] + std::string("_") + std::to_string(rng.below(1000));
  out += "static int " + fn + "(const std::vector<int>& items, int limit) {\n";
  for (uint32_t i = 0, n = 2 + rng.below(6); i < n; ++i) {
    std::string a = kNames[rng.below(8)], b = kNames[rng.below(8)];
    switch (rng.below(3)) {
      case 0: out += "  int " + a + " = items[" + std::to_string(rng.below(64)) + "] * " + b + ";\n"; break;
      case 1: out += "  for (size_t i = 0; i < items.size(); ++i) { " + a + " += items[i]; }\n"; break;
      default: out += "  if (" + a + " >= limit) return -" + std::to_string(rng.below(10)) + "; // " + b + "\n";
    }
  }
  out += "  return limit;\n}\n\n";
}

void append_cjk(Lcg& rng, std::string& out) {
  for (uint32_t s = 0, sentences = 2 + rng.below(4); s < sentences; ++s) {
    for (uint32_t i = 0, n = 8 + rng.below(30); i < n; ++i) {
      // Mostly frequent CJK ideographs (U+4E00..U+62FF), some hiragana.
      uint32_t cp = rng.below(5) == 0 ? 0x3041 + rng.below(0x50) : 0x4E00 + rng.below(0x1500);
      pensieve::tokenizer::append_utf8(out, cp);
    }
    out += rng.below(2) ? "。" : "，";
  }
  out += "\n";
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string mixed_text(std::size_t target_bytes) {
  Lcg rng(20260101);
  std::string text;
  while (text.size() < target_bytes) {
    switch (rng.below(3)) {
      case 0: append_prose(rng, text); break;
      case 1: append_code(rng, text); break;
      default: append_cjk(rng, text); break;
    }
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : std::string(PENSIEVE_FIXTURES_DIR) + "/tokenizers/llama3/tokenizer.json";
  Tokenizer tok = Tokenizer::from_hf_json(path);
  const std::string text = mixed_text(1 << 20);
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("text: %zu bytes of mixed prose / code / CJK\n", text.size());
  if (const char* dump = std::getenv("TOKENIZER_BENCH_DUMP")) {
    if (FILE* f = std::fopen(dump, "wb")) {
      std::fwrite(text.data(), 1, text.size(), f);
      std::fclose(f);
    }
  }

  std::vector<int32_t> ids;
  double best = 0;
  const int passes = std::getenv("TOKENIZER_BENCH_PASSES") ? std::atoi(std::getenv("TOKENIZER_BENCH_PASSES")) : 6;
  for (int pass = 0; pass < passes; ++pass) {
    ids.clear();
    // Thread CPU time: the figure should not depend on what else the machine is running.
    double start = thread_cpu_seconds();
    tok.encode_append(text, false, false, ids);
    double seconds = thread_cpu_seconds() - start;
    double rate = mb / seconds;
    if (pass == 0) std::printf("cold pass: %.1f MB/s (%zu tokens, %.2f bytes/token)\n", rate, ids.size(),
                               static_cast<double>(text.size()) / static_cast<double>(ids.size()));
    if (pass > 0 && rate > best) best = rate;
  }
  std::printf("warm passes (best of %d): %.1f MB/s (single thread, CPU time)\n", passes - 1, best);
  if (tok.decode(ids) != text) {
    std::fprintf(stderr, "decode(encode(text)) != text\n");
    return 1;
  }
  return 0;
}
