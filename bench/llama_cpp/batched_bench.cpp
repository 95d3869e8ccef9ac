// llama.cpp baseline harness for `pensieve bench-engine`, written against llama.h only (no llama.cpp common/
// or tools/ code). Built by bench/llama_cpp/CMakeLists.txt; run through scripts/llama-cpp-baseline.sh.
//
//   llama-bench-pensieve --model F [--threads 2] [--prompt 128] [--gen 128] [--batch 1,4,8] [--json]
//                        [--n-batch 2048] [--n-ubatch 512] [--flash-attn auto|on|off] [--kv-unified]
//                        [--seed 1234] [--verbose]
//   llama-bench-pensieve --model F --greedy-check --tokens 1,2,3 [--max-tokens 16] [--json] [--logits-out FILE]
//
// Throughput mode, for each batch size B, on a fresh context (n_seq_max = B, n_ctx = B * (prompt + gen) rounded
// up to whole 256-cell streams, KV cache F16, one KV stream per sequence unless --kv-unified, flash attention
// `auto` as in llama.cpp's defaults; n_batch 2048 / n_ubatch 512 as llama-batched-bench's defaults):
//   warm-up   one llama_decode of min(B*prompt, n_ubatch) prompt tokens + one step of B tokens, then the
//             memory is cleared (untimed; also faults the mapped weights in);
//   prefill   B distinct prompts of `prompt` random token ids (std::mt19937, fixed seed) in llama_decode calls
//             of at most n_batch tokens (llama.cpp splits those into n_ubatch micro-batches); logits only for
//             each sequence's last prompt token; prefill tok/s = B*prompt / time;
//   decode    `gen` llama_decode steps of B tokens (one per sequence), each followed by a greedy argmax over
//             every sequence's logits to pick its next token (real generation; the argmax is inside the timed
//             region, ~B*vocab float compares a step); decode tok/s = B*gen / time.
// Times are wall clock around the calls, with llama_synchronize before the clock stops.
//
// Greedy-check mode: one sequence, the given prompt ids as is (no BOS added), then --max-tokens greedy steps;
// prints the generated ids (and the top-1/top-2 logit gap at each step, to judge numerical-noise divergences).
// --logits-out FILE also writes the prompt's logits at every position, float32 [tokens][vocab] row-major (the
// layout of `pensieve logits --out`), for a direct comparison.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "llama.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  int threads = 2;
  int prompt = 128;
  int gen = 128;
  std::vector<int> batches{1, 4, 8};
  bool json = false;
  int n_batch = 2048;
  int n_ubatch = 512;
  std::string flash_attn = "auto";
  bool kv_unified = false;
  uint32_t seed = 1234;
  bool verbose = false;
  bool greedy_check = false;
  std::vector<int> tokens;
  int max_tokens = 16;
  std::string logits_out;
};

[[noreturn]] void usage(const char* msg) {
  if (msg) std::fprintf(stderr, "error: %s\n", msg);
  std::fprintf(stderr,
               "usage: llama-bench-pensieve --model F [--threads N] [--prompt N] [--gen N] [--batch 1,4,8] [--json]\n"
               "                            [--n-batch N] [--n-ubatch N] [--flash-attn auto|on|off] [--kv-unified]\n"
               "                            [--seed N] [--verbose]\n"
               "       llama-bench-pensieve --model F --greedy-check --tokens 1,2,3 [--max-tokens 16] [--json]\n"
               "                            [--logits-out FILE]\n");
  std::exit(2);
}

std::vector<int> parse_ints(const std::string& text, const char* what) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > 1 << 30) {
      usage((std::string(what) + ": '" + item + "' is not a non-negative integer").c_str());
    }
    out.push_back(static_cast<int>(v));
    start = comma + 1;
  }
  return out;
}

Args parse_args(int argc, char** argv) {
  Args a;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage((std::string(argv[i]) + " needs a value").c_str());
    return argv[++i];
  };
  auto positive = [&](int& i) {
    const std::string flag = argv[i];
    const std::vector<int> v = parse_ints(value(i), flag.c_str());
    if (v.size() != 1 || v[0] <= 0) usage((flag + " takes one positive integer").c_str());
    return v[0];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--model" || f == "-m") a.model = value(i);
    else if (f == "--threads" || f == "-t") a.threads = positive(i);
    else if (f == "--prompt") a.prompt = positive(i);
    else if (f == "--gen") a.gen = positive(i);
    else if (f == "--batch") {
      a.batches = parse_ints(value(i), "--batch");
      for (int b : a.batches) if (b <= 0 || b > 256) usage("--batch sizes must be in 1..256");
    }
    else if (f == "--json") a.json = true;
    else if (f == "--n-batch") a.n_batch = positive(i);
    else if (f == "--n-ubatch") a.n_ubatch = positive(i);
    else if (f == "--flash-attn" || f == "-fa") {
      a.flash_attn = value(i);
      if (a.flash_attn != "auto" && a.flash_attn != "on" && a.flash_attn != "off") usage("--flash-attn: auto, on or off");
    }
    else if (f == "--kv-unified") a.kv_unified = true;
    else if (f == "--seed") a.seed = static_cast<uint32_t>(positive(i));
    else if (f == "--verbose") a.verbose = true;
    else if (f == "--greedy-check") a.greedy_check = true;
    else if (f == "--tokens") a.tokens = parse_ints(value(i), "--tokens");
    else if (f == "--max-tokens") a.max_tokens = positive(i);
    else if (f == "--logits-out") a.logits_out = value(i);
    else if (f == "--help" || f == "-h") usage(nullptr);
    else usage(("unknown argument " + f).c_str());
  }
  if (a.model.empty()) usage("--model is required");
  if (a.greedy_check && a.tokens.empty()) usage("--greedy-check needs --tokens");
  return a;
}

// llama.cpp's log: warnings and errors always go to stderr, the rest only with --verbose. Lines that tell how
// flash attention resolved are kept for the report.
struct LogState {
  bool verbose = false;
  std::string flash_attn_lines;
};
LogState g_log;

void log_callback(enum lm_ggml_log_level level, const char* text, void*) {
  const std::string t = text ? text : "";
  if (t.find("Flash Attention") != std::string::npos) g_log.flash_attn_lines += t;
  if (g_log.verbose || level == LM_GGML_LOG_LEVEL_WARN || level == LM_GGML_LOG_LEVEL_ERROR) {
    std::fputs(t.c_str(), stderr);
  }
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Fills `batch` (allocated for at least the tokens added) one token at a time.
void batch_add(llama_batch& batch, llama_token id, llama_pos pos, llama_seq_id seq, bool logits) {
  const int i = batch.n_tokens++;
  batch.token[i] = id;
  batch.pos[i] = pos;
  batch.n_seq_id[i] = 1;
  batch.seq_id[i][0] = seq;
  batch.logits[i] = logits ? 1 : 0;
}

struct Argmax {
  llama_token id = 0;
  float margin = 0;  // top-1 minus top-2 logit
};

Argmax argmax(const float* logits, int n_vocab) {
  Argmax r;
  float best = -INFINITY, second = -INFINITY;
  for (int i = 0; i < n_vocab; ++i) {
    const float v = logits[i];
    if (v > best) {
      second = best;
      best = v;
      r.id = i;
    } else if (v > second) {
      second = v;
    }
  }
  r.margin = best - second;
  return r;
}

void check_decode(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string("llama_decode failed during ") + what + " (rc " + std::to_string(rc) + ")");
}

llama_context_params context_params(const Args& a, int n_seq, int tokens_per_seq) {
  llama_context_params p = llama_context_default_params();
  const int per_seq = (tokens_per_seq + 255) / 256 * 256;
  p.n_ctx = static_cast<uint32_t>(per_seq * n_seq);
  p.n_batch = static_cast<uint32_t>(a.n_batch);
  p.n_ubatch = static_cast<uint32_t>(std::min(a.n_ubatch, a.n_batch));
  p.n_seq_max = static_cast<uint32_t>(n_seq);
  p.n_threads = a.threads;
  p.n_threads_batch = a.threads;
  p.flash_attn_type = a.flash_attn == "on"    ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                      : a.flash_attn == "off" ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                              : LLAMA_FLASH_ATTN_TYPE_AUTO;
  p.type_k = LM_GGML_TYPE_F16;
  p.type_v = LM_GGML_TYPE_F16;
  p.kv_unified = a.kv_unified;
  p.no_perf = true;
  return p;
}

struct Result {
  int batch = 0;
  double prefill_s = 0, decode_s = 0;
  double prefill_tok_s = 0, decode_tok_s = 0;
};

Result bench_one(llama_model* model, const Args& a, int B) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  llama_context* ctx = llama_init_from_model(model, context_params(a, B, a.prompt + a.gen));
  if (!ctx) throw std::runtime_error("llama_init_from_model failed for batch " + std::to_string(B));
  llama_memory_t mem = llama_get_memory(ctx);

  std::mt19937 rng(a.seed + static_cast<uint32_t>(B));
  std::uniform_int_distribution<llama_token> any_token(0, n_vocab - 1);
  const int max_batch_tokens = std::max(std::min(B * a.prompt, a.n_batch), B);
  llama_batch batch = llama_batch_init(max_batch_tokens, 0, 1);

  // Warm-up (untimed): one prompt chunk and one decode step, then forget them.
  batch.n_tokens = 0;
  const int warm = std::min({a.prompt, a.n_ubatch, max_batch_tokens});
  for (int p = 0; p < warm; ++p) batch_add(batch, any_token(rng), p, 0, p + 1 == warm);
  check_decode(llama_decode(ctx, batch), "warm-up prefill");
  batch.n_tokens = 0;
  for (int s = 0; s < B; ++s) batch_add(batch, any_token(rng), s == 0 ? warm : 0, s, true);
  check_decode(llama_decode(ctx, batch), "warm-up decode");
  llama_synchronize(ctx);
  llama_memory_clear(mem, true);

  // The B prompts, sequence-major.
  std::vector<llama_token> prompts(static_cast<size_t>(B) * a.prompt);
  for (auto& t : prompts) t = any_token(rng);

  Result r;
  r.batch = B;
  std::vector<llama_token> next(static_cast<size_t>(B));
  std::vector<int> out_row(static_cast<size_t>(B), -1);  // batch row holding each sequence's logits

  auto start = Clock::now();
  const int total = B * a.prompt;
  for (int i0 = 0; i0 < total; i0 += a.n_batch) {
    const int i1 = std::min(total, i0 + a.n_batch);
    batch.n_tokens = 0;
    for (int i = i0; i < i1; ++i) {
      const int s = i / a.prompt, p = i % a.prompt;
      const bool last = p + 1 == a.prompt;
      if (last) out_row[static_cast<size_t>(s)] = i - i0;
      batch_add(batch, prompts[static_cast<size_t>(i)], p, s, last);
    }
    check_decode(llama_decode(ctx, batch), "prefill");
    for (int s = 0; s < B; ++s) {  // logits of sequences whose prompt ended in this call
      const int row = out_row[static_cast<size_t>(s)];
      if (row >= 0 && s * a.prompt + a.prompt - 1 >= i0 && s * a.prompt + a.prompt - 1 < i1) {
        next[static_cast<size_t>(s)] = argmax(llama_get_logits_ith(ctx, row), n_vocab).id;
      }
    }
  }
  llama_synchronize(ctx);
  r.prefill_s = seconds_since(start);

  start = Clock::now();
  for (int step = 0; step < a.gen; ++step) {
    batch.n_tokens = 0;
    for (int s = 0; s < B; ++s) batch_add(batch, next[static_cast<size_t>(s)], a.prompt + step, s, true);
    check_decode(llama_decode(ctx, batch), "decode");
    for (int s = 0; s < B; ++s) next[static_cast<size_t>(s)] = argmax(llama_get_logits_ith(ctx, s), n_vocab).id;
  }
  llama_synchronize(ctx);
  r.decode_s = seconds_since(start);

  r.prefill_tok_s = static_cast<double>(B) * a.prompt / r.prefill_s;
  r.decode_tok_s = static_cast<double>(B) * a.gen / r.decode_s;
  llama_batch_free(batch);
  llama_free(ctx);
  return r;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (c == '\n') o += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int greedy_check(llama_model* model, const Args& a) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  const int n_prompt = static_cast<int>(a.tokens.size());
  Args one = a;
  one.n_batch = std::max(a.n_batch, n_prompt);
  one.n_ubatch = std::max(a.n_ubatch, n_prompt);  // the whole prompt in one micro-batch
  llama_context* ctx = llama_init_from_model(model, context_params(one, 1, n_prompt + a.max_tokens));
  if (!ctx) throw std::runtime_error("llama_init_from_model failed");
  llama_batch batch = llama_batch_init(n_prompt, 0, 1);
  for (int p = 0; p < n_prompt; ++p) {
    if (a.tokens[static_cast<size_t>(p)] >= n_vocab) throw std::runtime_error("--tokens: id out of the vocabulary");
    batch_add(batch, a.tokens[static_cast<size_t>(p)], p, 0, p + 1 == n_prompt || !a.logits_out.empty());
  }
  check_decode(llama_decode(ctx, batch), "prompt");
  if (!a.logits_out.empty()) {
    FILE* f = std::fopen(a.logits_out.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + a.logits_out);
    for (int p = 0; p < n_prompt; ++p) {
      if (std::fwrite(llama_get_logits_ith(ctx, p), sizeof(float), static_cast<size_t>(n_vocab), f) !=
          static_cast<size_t>(n_vocab)) {
        std::fclose(f);
        throw std::runtime_error("short write to " + a.logits_out);
      }
    }
    std::fclose(f);
  }
  std::vector<Argmax> out;
  Argmax cur = argmax(llama_get_logits_ith(ctx, n_prompt - 1), n_vocab);
  for (int i = 0; i < a.max_tokens; ++i) {
    out.push_back(cur);
    if (i + 1 == a.max_tokens) break;
    batch.n_tokens = 0;
    batch_add(batch, cur.id, n_prompt + i, 0, true);
    check_decode(llama_decode(ctx, batch), "generation");
    cur = argmax(llama_get_logits_ith(ctx, 0), n_vocab);
  }
  if (a.json) {
    std::printf("{\"model\": \"%s\", \"prompt\": [", json_escape(a.model).c_str());
    for (int p = 0; p < n_prompt; ++p) std::printf("%s%d", p ? ", " : "", a.tokens[static_cast<size_t>(p)]);
    std::printf("], \"tokens\": [");
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? ", " : "", out[i].id);
    std::printf("], \"top1_margins\": [");
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%.6g", i ? ", " : "", out[i].margin);
    std::printf("]}\n");
  } else {
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? "," : "", out[i].id);
    std::printf("\n");
    std::fprintf(stderr, "top-1 margins:");
    for (const auto& o : out) std::fprintf(stderr, " %.4g", o.margin);
    std::fprintf(stderr, "\n");
  }
  llama_batch_free(batch);
  llama_free(ctx);
  return 0;
}

int run(const Args& a) {
  g_log.verbose = a.verbose;
  llama_log_set(log_callback, nullptr);
  llama_backend_init();

  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(a.model.c_str(), mp);
  if (!model) {
    std::fprintf(stderr, "error: llama.cpp could not load %s\n", a.model.c_str());
    return 1;
  }
  int rc = 0;
  if (a.greedy_check) {
    rc = greedy_check(model, a);
  } else {
    std::vector<Result> results;
    for (int B : a.batches) results.push_back(bench_one(model, a, B));
    char desc[256] = {0};
    llama_model_desc(model, desc, sizeof desc);
    const std::string fa = trim(g_log.flash_attn_lines.substr(0, g_log.flash_attn_lines.find('\n')));
    const std::string fa_resolved = a.flash_attn != "auto"  ? a.flash_attn
                                    : fa.find("enabled") != std::string::npos ? "auto -> on"
                                    : fa.find("disabled") != std::string::npos ? "auto -> off"
                                                                                : "auto";
    const std::string sys = trim(llama_print_system_info());
    if (a.json) {
      std::printf("{\n  \"engine\": \"llama.cpp\",\n  \"model\": \"%s\",\n  \"model_desc\": \"%s\",\n",
                  json_escape(a.model).c_str(), json_escape(desc).c_str());
      std::printf("  \"model_bytes\": %" PRIu64 ",\n  \"threads\": %d,\n  \"prompt\": %d,\n  \"gen\": %d,\n",
                  llama_model_size(model), a.threads, a.prompt, a.gen);
      std::printf("  \"n_batch\": %d,\n  \"n_ubatch\": %d,\n  \"flash_attn\": \"%s\",\n  \"kv_unified\": %s,\n",
                  a.n_batch, a.n_ubatch, fa_resolved.c_str(), a.kv_unified ? "true" : "false");
      std::printf("  \"system_info\": \"%s\",\n  \"results\": [\n", json_escape(sys).c_str());
      for (size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        std::printf("    {\"batch\": %d, \"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, \"prefill_s\": %.4f, "
                    "\"decode_s\": %.4f}%s\n",
                    r.batch, r.prefill_tok_s, r.decode_tok_s, r.prefill_s, r.decode_s,
                    i + 1 < results.size() ? "," : "");
      }
      std::printf("  ]\n}\n");
    } else {
      std::printf("llama.cpp %s  model %s (%s, %.1f MB)  threads %d\n", "b10256", a.model.c_str(), desc,
                  llama_model_size(model) / 1e6, a.threads);
      std::printf("flash_attn %s  kv f16 %s  n_batch %d  n_ubatch %d\n", fa_resolved.c_str(),
                  a.kv_unified ? "unified" : "one stream per sequence", a.n_batch, a.n_ubatch);
      std::printf("system: %s\n", sys.c_str());
      std::printf("prompt %d, gen %d per sequence (decode: greedy argmax)\n", a.prompt, a.gen);
      std::printf("%6s %14s %14s\n", "batch", "prefill tok/s", "decode tok/s");
      for (const auto& r : results) std::printf("%6d %14.1f %14.1f\n", r.batch, r.prefill_tok_s, r.decode_tok_s);
    }
  }
  llama_model_free(model);
  llama_backend_free();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
