// `pensieve run --model F [--prompt TEXT] [--system TEXT] [--max-tokens N] [--temperature T]`: chat with a model
// in the terminal. Answers stream as they are generated. With --prompt: one answer, then exit. Without: a
// multi-turn conversation read line by line from stdin until EOF. Ctrl-C stops the answer being generated;
// Ctrl-C twice at the prompt quits.
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <pthread.h>
#include <unistd.h>

#include "api/served_model.h"
#include "backend/backend.h"
#include "cli/command_registry.h"
#include "cli/device_option.h"
#include "cli/memory_plan.h"
#include "engine/serving_engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string prompt;
  std::string system;
  int max_tokens = 512;
  float temperature = 0.8f;
  std::optional<uint64_t> seed;
  int ctx_size = 0;
  std::string kv_type = "f16";
  int threads = 0;
  std::string device = "auto";
};

volatile std::sig_atomic_t g_interrupts = 0;

extern "C" void on_sigint(int) { g_interrupts = g_interrupts + 1; }

// Delivers SIGINT to this (the main) thread only: worker threads started while it is blocked inherit the
// block, so a Ctrl-C interrupts our read() or wait loop rather than landing on an engine thread.
class SigintGuard {
 public:
  SigintGuard() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &saved_mask_);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a Ctrl-C must interrupt a blocking read of stdin
    sigaction(SIGINT, &sa, &saved_action_);
  }
  // Call once the worker threads exist.
  void deliver_here() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
  ~SigintGuard() {
    sigaction(SIGINT, &saved_action_, nullptr);
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
  }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  sigset_t saved_mask_{};
  struct sigaction saved_action_ {};
};

// Lines from stdin through read(2), so that a Ctrl-C (EINTR) is seen at once.
class LineReader {
 public:
  enum class Status { Line, Eof, Interrupted };
  Status next(std::string& line) {
    for (;;) {
      const size_t nl = pending_.find('\n');
      if (nl != std::string::npos) {
        line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return Status::Line;
      }
      char buf[4096];
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) {
        pending_.append(buf, static_cast<size_t>(n));
      } else if (n == 0) {
        if (pending_.empty()) return Status::Eof;
        line = std::move(pending_);  // a last line without its newline
        pending_.clear();
        return Status::Line;
      } else if (errno == EINTR) {
        if (g_interrupts > 0) return Status::Interrupted;
      } else {
        return Status::Eof;
      }
    }
  }

 private:
  std::string pending_;
};

struct Answer {
  std::string text;
  bool completed = false;  // false: refused or stopped by Ctrl-C
};

// Generates one assistant turn, printing text as it arrives.
Answer answer(const api::ServedModel& served, const api::Json& messages, const RunArgs& a) {
  engine::GenerationRequest req;
  req.prompt = served.chat_prompt(messages, api::Json());
  req.sampling.temperature = a.temperature;
  req.sampling.seed = a.seed;
  req.stop.max_tokens = a.max_tokens;
  auto submitted = served.engine().submit(std::move(req));
  if (auto* refused = std::get_if<engine::SubmitRefused>(&submitted)) {
    std::fprintf(stderr, "pensieve: %s\n", refused->message.c_str());
    return {};
  }
  const auto handle = std::get<std::shared_ptr<engine::RequestHandle>>(submitted);
  g_interrupts = 0;
  Answer out;
  bool cancelled = false;
  std::vector<engine::GenerationEvent> events;
  for (;;) {
    if (g_interrupts > 0 && !cancelled) {
      handle->cancel();
      cancelled = true;
    }
    events.clear();
    const bool more = handle->drain(events);
    for (const engine::GenerationEvent& e : events) {
      if (!e.text.empty()) {
        std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        std::fflush(stdout);
        out.text += e.text;
      }
      if (e.finish == engine::FinishReason::Error) std::fprintf(stderr, "\npensieve: %s\n", e.error.c_str());
      if (e.finish) out.completed = *e.finish == engine::FinishReason::Stop || *e.finish == engine::FinishReason::Length;
    }
    if (!more) break;
    handle->wait(std::chrono::milliseconds(50));
  }
  std::printf("\n");
  std::fflush(stdout);
  if (cancelled) std::fprintf(stderr, "[stopped]\n");
  g_interrupts = 0;
  return out;
}

int chat_loop(const api::ServedModel& served, api::Json messages, const RunArgs& a) {
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  if (tty) std::fprintf(stderr, "pensieve: type a message; Ctrl-C stops an answer, Ctrl-D (or Ctrl-C twice) quits\n");
  LineReader reader;
  int interrupts_at_prompt = 0;
  std::string line;
  for (;;) {
    if (tty) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    const LineReader::Status s = reader.next(line);
    if (s == LineReader::Status::Eof) break;
    if (s == LineReader::Status::Interrupted) {
      g_interrupts = 0;
      if (++interrupts_at_prompt >= 2) break;
      std::fprintf(stderr, "\n(Ctrl-C again or Ctrl-D to quit)\n");
      continue;
    }
    interrupts_at_prompt = 0;
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    const Answer reply = answer(served, messages, a);
    if (reply.text.empty() && !reply.completed) {
      messages.erase(messages.size() - 1);  // nothing to answer with: forget the question
      continue;
    }
    messages.push_back({{"role", "assistant"}, {"content", reply.text}});
  }
  if (tty) std::printf("\n");
  return 0;
}

int run_run(const RunArgs& a) {
  if (a.max_tokens < 1) throw CommandError{"--max-tokens must be at least 1"};
  if (a.temperature < 0) throw CommandError{"--temperature must not be negative"};
  const kv::KvType kv_type = parse_kv_type_flag(a.kv_type, "--kv-type");
  if (!std::filesystem::is_regular_file(a.model)) throw CommandError{"--model: no such file: " + a.model};

  SigintGuard sigint;
  std::unique_ptr<backend::Backend> be;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<engine::Engine> eng;
  std::unique_ptr<api::ServedModel> served;
  try {
    be = open_backend(a.device, a.threads);
    model = model::Model::load(a.model, *be);
    tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(model->file()));
    require_kv_type_fits(kv_type, model->config());
    engine::EngineOptions eo;
    eo.kv_type = kv_type;
    eo.parallel = 1;
    eo.context_length = a.ctx_size;
    eng = engine::make_serving_engine(*model, *tok, eo);
    served = std::make_unique<api::ServedModel>(std::filesystem::path(a.model).stem().string(), *eng, *tok);
  } catch (const std::exception& e) {
    throw CommandError{std::string("cannot load the model: ") + e.what()};
  }
  sigint.deliver_here();
  if (g_interrupts > 0) {  // Ctrl-C while loading: the user changed their mind
    eng->shutdown();
    return 130;
  }
  if (served->template_is_fallback()) {
    std::fprintf(stderr, "pensieve: the model has no chat template; using ChatML\n");
  }

  api::Json messages = api::Json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  int rc = 0;
  try {
    if (!a.prompt.empty()) {
      messages.push_back({{"role", "user"}, {"content", a.prompt}});
      const Answer reply = answer(*served, messages, a);
      if (reply.text.empty() && !reply.completed) rc = 1;
    } else {
      rc = chat_loop(*served, std::move(messages), a);
    }
  } catch (const std::exception& e) {
    eng->shutdown();
    throw CommandError{e.what()};
  }
  eng->shutdown();
  return rc;
}

const RegisterCommand kRun{
    "run", "Chat with a model in the terminal (or answer one --prompt)", [](CLI::App& sub) -> Action {
      auto a = std::make_shared<RunArgs>();
      sub.add_option("--model", a->model, "GGUF model file")->required();
      sub.add_option("--prompt", a->prompt, "Answer this one message and exit (default: interactive chat)");
      sub.add_option("--system", a->system, "System message at the start of the conversation");
      sub.add_option("--max-tokens", a->max_tokens, "Longest answer in tokens (default 512)");
      sub.add_option("--temperature", a->temperature, "Sampling temperature; 0 is greedy (default 0.8)");
      sub.add_option("--seed", a->seed, "Sampling seed (default: random)");
      sub.add_option("--ctx-size", a->ctx_size, "Longest conversation in tokens (default: the model's, up to 8192)");
      sub.add_option("--kv-type", a->kv_type, "KV cache precision: f16 (default), q8_0 or f32");
      sub.add_option("--threads", a->threads, "Compute threads (default: physical cores)");
      add_device_option(sub, a->device);
      return [a] { return run_run(*a); };
    }};

}  // namespace
}  // namespace pensieve::cli
