// Continuous batching: one thread per model runs steps. A step feeds one Batch: a decode row for every
// running sequence that has one token to feed, then prefill chunks (oldest first) within the token budget,
// then newly admitted sequences. KV blocks come from a refcounted prefix cache; when a decode needs a block
// and none is left, the most recently admitted sequence is preempted (blocks freed, recomputed later from its
// tokens; its sampler state is kept, so its output does not change).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "engine/event_channel.h"
#include "engine/sequence.h"
#include "engine/serving_engine.h"
#include "kv/prefix_cache.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::engine {

namespace {

constexpr int kDefaultContextCap = 8192;  // sizes the default pool; a model's 128k context would be absurd

// What submit() hands to the engine thread, and how cancel() wakes it.
struct Inbox final : EngineWakeup {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::shared_ptr<RequestState>> arrivals;
  bool woken = false;
  bool admitting = true;
  bool stopping = false;
  int queued = 0;  // requests submitted whose choice 0 was not admitted yet

  void wake() override {
    {
      std::lock_guard lock(mutex);
      woken = true;
    }
    cv.notify_one();
  }
};

int pool_blocks(const model::Model& m, const EngineOptions& o, int context) {
  if (o.kv_blocks > 0) return o.kv_blocks;
  const auto& c = m.config();
  const uint64_t block_bytes = 2ull * kv::kBlockTokens * kv::kv_row_bytes(o.kv_type, c.kv_dim()) *
                               static_cast<uint64_t>(c.n_layers);
  if (o.kv_bytes > 0) return static_cast<int>(std::max<uint64_t>(1, o.kv_bytes / block_bytes));
  const int per_seq = (std::min(context, kDefaultContextCap) + kv::kBlockTokens - 1) / kv::kBlockTokens;
  return std::max(1, o.parallel) * per_seq;
}

class ServingEngine final : public Engine {
 public:
  ServingEngine(model::Model& m, const tokenizer::Tokenizer& tok, const EngineOptions& o)
      : model_(m),
        tokenizer_(tok),
        options_(o),
        vocab_(m.config().vocab),
        parallel_(std::max(1, o.parallel)),
        token_budget_(std::max(o.token_budget, parallel_)),
        pool_(m.make_kv_pool(o.kv_type, pool_blocks(m, o, requested_context(m, o)))),
        cache_(pool_, o.prefix_caching),
        context_length_(std::min(requested_context(m, o), pool_.n_blocks() * kv::kBlockTokens)),
        sampler_(vocab_),
        inbox_(std::make_shared<Inbox>()) {
    logits_.resize(static_cast<size_t>(parallel_) * static_cast<size_t>(vocab_));
    raw_row_.resize(static_cast<size_t>(vocab_));
    heads_.resize(static_cast<size_t>(parallel_));
    scheduled_.reserve(static_cast<size_t>(parallel_));
    publish_stats();
    warm_up();
    thread_ = std::thread([this] { run(); });
  }

  ~ServingEngine() override { shutdown(); }

  // What a first client would otherwise wait for, done before the engine takes requests. A process's first
  // forward pass on a GPU sets up cuBLAS (~100 ms on an H200), and cuBLAS picks an algorithm for each new
  // product shape the first time (a 1B model's first 129-row prefill took 16 ms where the next took 2.4):
  // the backend names the prefill lengths up to the token budget (at most 512) that meet every shape (the
  // CUDA backend: ~8k rows, about half a second of prefill for an 8B model on an H200). A decode step is
  // recorded as a CUDA graph the second time its shape comes, per 256 tokens of context: two steps at one row
  // in each of the first two spans make a single stream's steps replays from its first token. The tokenizer
  // builds a workspace (its 2 MB cache of pieces) on its first use, too.
  void warm_up() {
    try {
      (void)tokenizer_.encode("The tokenizer's first workspace is made here.");
    } catch (const std::exception&) {
      // A vocabulary that cannot encode this text leaves the workspace to the first request; its own text
      // gets the error it would get anyway.
    }
    if (model_.backend().host_memory()) return;
    const int longest = std::min({token_budget_, kWarmPrefillRows, context_length_ - 1});
    kv::BlockTable table;
    if (longest < 1 || !table.reserve(pool_, longest + 1)) return;
    std::vector<backend::TopLogits> head(1);
    model::Batch b;
    for (const int rows : model_.backend().warm_up_prefill_rows(longest)) {
      b.clear();
      b.add_sequence(table.blocks());
      for (int i = 0; i < rows; ++i) b.add_token(i % vocab_, i, 0, i + 1 == rows);
      model_.run(b, pool_);
      model_.read_top_logits(head);
    }
    // With the default budget, positions 255 and 511: contexts of 256 and 512, the last of each span.
    for (const int position : {longest / 2 - 1, longest - 1}) {
      for (int twice = 0; twice < 2 && position >= 0; ++twice) {
        b.clear();
        b.add_sequence(table.blocks());
        b.add_token(0, position, 0, true);
        model_.run(b, pool_);
        model_.read_top_logits(head);
      }
    }
    table.release_all(pool_);
  }

  std::variant<std::shared_ptr<RequestHandle>, SubmitRefused> submit(GenerationRequest r) override {
    if (auto refused = validate(r)) return *refused;
    auto state = std::make_shared<RequestState>();
    state->max_tokens = std::min(r.stop.max_tokens, context_length_ - static_cast<int>(r.prompt.size()));
    const uint64_t seed = r.sampling.seed ? *r.sampling.seed : std::random_device{}() * 0x100000001ull;
    state->request = std::move(r);
    state->channel = std::make_shared<EventChannel>(
        inbox_, static_cast<size_t>(std::max(0, options_.max_queued_events)) * static_cast<size_t>(std::max(1, r.n)));
    state->usage.prompt_tokens = static_cast<int>(state->request.prompt.size());
    for (int c = 0; c < state->request.n; ++c) {
      state->choices.push_back(
          std::make_unique<Sequence>(*state, c, choice_seed(seed, c), tokenizer_, state->request));
    }
    state->unfinished = state->request.n;
    {
      std::lock_guard lock(inbox_->mutex);
      if (inbox_->stopping || !inbox_->admitting) {
        return SubmitRefused{SubmitRefused::Why::ShuttingDown, "the engine is shutting down"};
      }
      if (inbox_->queued >= options_.queue_limit) {
        return SubmitRefused{SubmitRefused::Why::QueueFull,
                             "too many waiting requests (" + std::to_string(inbox_->queued) + ")"};
      }
      ++inbox_->queued;
      state->order = next_order_++;
      inbox_->arrivals.push_back(state);
    }
    inbox_->cv.notify_one();
    return std::shared_ptr<RequestHandle>(state->channel);
  }

  EngineStats stats() const override {
    EngineStats s;
    {
      std::lock_guard lock(stats_mutex_);
      s = stats_;
    }
    const backend::DeviceInfo d = model_.backend().device_info();
    s.device = d.kind == "cuda" ? "cuda:" + std::to_string(d.index) + " " + d.name : d.name;
    s.device_memory_allocated = d.allocated_bytes;
    s.device_memory_total = d.total_bytes;
    s.device_memory_free = d.free_bytes;
    s.recorded_steps = d.recorded_steps;
    s.replayed_steps = d.replayed_steps;
    return s;
  }
  int context_length() const override { return context_length_; }
  int max_parallel() const override { return parallel_; }

  void stop_admitting() override {
    std::lock_guard lock(inbox_->mutex);
    inbox_->admitting = false;
  }

  void shutdown() override {
    {
      std::lock_guard lock(inbox_->mutex);
      inbox_->admitting = false;
      inbox_->stopping = true;
    }
    inbox_->cv.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static int requested_context(const model::Model& m, const EngineOptions& o) {
    const int model_ctx = m.config().context_length > 0 ? m.config().context_length : 4096;
    return o.context_length > 0 ? std::min(o.context_length, model_ctx) : model_ctx;
  }

  std::optional<SubmitRefused> validate(const GenerationRequest& r) const {
    const auto invalid = [](std::string why) {
      return SubmitRefused{SubmitRefused::Why::InvalidRequest, std::move(why)};
    };
    if (r.prompt.empty()) return invalid("the prompt has no tokens");
    for (int32_t t : r.prompt) {
      if (t < 0 || t >= vocab_) return invalid("prompt token " + std::to_string(t) + " is not in the vocabulary");
    }
    for (const auto& [t, bias] : r.sampling.logit_bias) {
      if (t < 0 || t >= vocab_) return invalid("logit_bias token " + std::to_string(t) + " is not in the vocabulary");
    }
    if (r.n < 1 || r.n > 128) return invalid("n must be between 1 and 128");
    if (r.stop.max_tokens < 1) return invalid("max_tokens must be at least 1");
    if (!(r.sampling.temperature >= 0.0f)) return invalid("temperature must not be negative");
    if (!(r.sampling.top_p > 0.0f && r.sampling.top_p <= 1.0f)) return invalid("top_p must be in (0, 1]");
    if (!(r.sampling.min_p >= 0.0f && r.sampling.min_p <= 1.0f)) return invalid("min_p must be in [0, 1]");
    if (r.sampling.top_k < 0) return invalid("top_k must not be negative");
    if (!(r.sampling.repetition_penalty > 0.0f)) return invalid("repetition_penalty must be positive");
    if (r.sampling.top_logprobs > 20) return invalid("top_logprobs must be at most 20");
    if (r.grammar && r.grammar->vocabulary().size() > vocab_) return invalid("the grammar was built for another vocabulary");
    if (static_cast<int>(r.prompt.size()) >= context_length_) {
      return SubmitRefused{SubmitRefused::Why::PromptTooLong,
                           "the prompt has " + std::to_string(r.prompt.size()) + " tokens; the context holds " +
                               std::to_string(context_length_) + " with at least one to generate"};
    }
    return std::nullopt;
  }

  // ---- The engine thread ----

  void run() {
    bool progressed = true;
    for (;;) {
      std::vector<std::shared_ptr<RequestState>> arrivals;
      bool stopping = false;
      {
        std::unique_lock lock(inbox_->mutex);
        // After a step that could schedule nothing, sleep until something changes rather than spin.
        const auto ready = [&] {
          return inbox_->woken || inbox_->stopping || !inbox_->arrivals.empty() ||
                 (progressed && (!running_.empty() || !waiting_.empty()));
        };
        inbox_->cv.wait(lock, ready);
        inbox_->woken = false;
        arrivals.swap(inbox_->arrivals);
        stopping = inbox_->stopping;
      }
      try {
        for (auto& r : arrivals) enqueue(std::move(r));
        if (stopping) {
          for (auto& r : active_) end_request(*r, FinishReason::Cancelled, "");
          active_.clear();
          publish_stats();
          return;
        }
        reap_cancelled();
        if (options_.fault_injector) options_.fault_injector();
        progressed = step();
        std::erase_if(active_, [](const auto& r) { return r->unfinished == 0; });
      } catch (const std::exception& e) {
        fail_all(e.what());
      } catch (...) {
        fail_all("unknown error");
      }
      publish_stats();
      if (stopping) return;
    }
  }

  // Something outside the model's forward pass threw mid-step: no request's state can be trusted, so every
  // one ends with an error (its caller gets a clean failure) and the engine starts over empty.
  void fail_all(const std::string& what) {
    const std::string message = "engine error: " + what;
    for (auto& r : active_) {
      try {
        end_request(*r, FinishReason::Error, message);
      } catch (...) {
        r->channel->close(r->usage);  // at least the caller stops waiting
      }
    }
    active_.clear();
    running_.clear();
    waiting_.clear();
  }

  void enqueue(std::shared_ptr<RequestState> r) {
    for (auto& s : r->choices) {
      // Later choices wait for choice 0's prompt blocks, then take them from the prefix cache.
      if (s->choice == 0 || !cache_.enabled()) make_waiting(*s);
    }
    active_.push_back(std::move(r));
  }

  // Waiting order: preempted sequences first (oldest admission first), then priority, then submission.
  static bool goes_before(const Sequence& a, const Sequence& b) {
    if (a.preempted != b.preempted) return a.preempted;
    if (a.preempted) return a.admitted_at < b.admitted_at;
    if (a.request->request.priority != b.request->request.priority) {
      return a.request->request.priority > b.request->request.priority;
    }
    if (a.request->order != b.request->order) return a.request->order < b.request->order;
    return a.choice < b.choice;
  }

  void make_waiting(Sequence& s) {
    s.state = SequenceState::Waiting;
    const auto at = std::upper_bound(waiting_.begin(), waiting_.end(), &s,
                                     [](const Sequence* a, const Sequence* b) { return goes_before(*a, *b); });
    waiting_.insert(at, &s);
  }

  void reap_cancelled() {
    for (auto& r : active_) {
      if (r->unfinished > 0 && r->channel->cancelled()) end_request(*r, FinishReason::Cancelled, "");
    }
  }

  // Ends every unfinished choice of `r` with `why`.
  void end_request(RequestState& r, FinishReason why, const std::string& error) {
    for (auto& s : r.choices) {
      if (s->state == SequenceState::Finished) continue;
      GenerationEvent e;
      e.choice = s->choice;
      e.finish = why;
      e.error = error;
      finish_sequence(*s, std::move(e));
    }
  }

  // Frees the sequence's blocks at once, leaves the queues, and delivers its last event.
  void finish_sequence(Sequence& s, GenerationEvent last) {
    if (s.state == SequenceState::Waiting) std::erase(waiting_, &s);
    if (s.state == SequenceState::Running) std::erase(running_, &s);
    cache_.release_all(s.blocks);
    s.block_keys.clear();
    s.state = SequenceState::Finished;
    RequestState& r = *s.request;
    if (s.choice == 0) release_later_choices(r);
    count_admitted(r);
    // Usage before the event: a caller may drain it before close() and read usage then (Anthropic's
    // message_start carries the prompt's count), and a one-token answer has set none yet.
    r.channel->set_usage(r.usage);
    r.channel->push(std::move(last));
    if (--r.unfinished == 0) r.channel->close(r.usage);
  }

  void release_later_choices(RequestState& r) {
    for (auto& c : r.choices) {
      if (c->state == SequenceState::Pending) make_waiting(*c);
    }
  }

  void count_admitted(RequestState& r) {
    if (!r.counted_as_queued) return;
    r.counted_as_queued = false;
    std::lock_guard lock(inbox_->mutex);
    --inbox_->queued;
  }

  // ---- One step ----

  struct Scheduled {
    Sequence* seq;
    int n_rows;
    int logits_row;  // -1: no logits this step
    bool from_head = false;  // its token comes from heads_[logits_row], not the whole row
  };

  // Returns false when nothing could be scheduled.
  bool step() {
    batch_.clear();
    scheduled_.clear();
    n_logit_rows_ = 0;
    int budget = token_budget_;

    // Decodes first, oldest first; a decode that cannot get a block preempts the newest running sequence.
    for (size_t i = 0; i < running_.size(); ++i) {
      Sequence* s = running_[i];
      if (s->remaining() != 1) continue;
      if (s->request->channel->backlogged()) continue;  // its reader is behind: paused, holding its blocks
      bool self_preempted = false;
      while (!grow(*s, s->n_computed + 1)) {
        Sequence* victim = running_.back();
        preempt(*victim);
        if (victim == s) {
          self_preempted = true;
          break;
        }
      }
      if (self_preempted) break;
      schedule(*s, 1, budget);
    }
    // Then prompts already admitted, in admission order (their blocks were reserved at admission).
    for (Sequence* s : running_) {
      if (budget <= 0) break;
      if (s->remaining() > 1) schedule(*s, std::min(s->remaining(), budget), budget);
    }
    // Then new (or preempted) sequences, while there is room and budget.
    while (budget > 0 && static_cast<int>(running_.size()) < parallel_ && !waiting_.empty()) {
      Sequence* s = waiting_.front();
      if (!admit(*s)) break;  // head-of-line: later requests do not overtake the first in line
      waiting_.erase(waiting_.begin());
      running_.push_back(s);
      schedule(*s, std::min(s->remaining(), budget), budget);
    }
    if (scheduled_.empty()) return false;

    try {
      const auto started = std::chrono::steady_clock::now();
      compute_logits();
      if (trace_steps_) {
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(stderr, "pensieve: step %llu: %d rows, %zu sequences, %.2f ms\n",
                     static_cast<unsigned long long>(steps_), batch_.size(), scheduled_.size(), ms);
      }
    } catch (const std::exception& e) {
      for (const Scheduled& sc : scheduled_) end_request(*sc.seq->request, FinishReason::Error, e.what());
      return true;
    }
    ++steps_;
    for (const Scheduled& sc : scheduled_) {
      sc.seq->n_computed += sc.n_rows;
      publish_full_blocks(*sc.seq);
    }
    for (const Scheduled& sc : scheduled_) {
      if (sc.logits_row >= 0 && sc.seq->state == SequenceState::Running) emit_token(*sc.seq, sc);
    }
    return true;
  }

  // Runs the step and brings back what each sequence's sampler needs: on the host, every row as computed;
  // on a device, only the head of a row (backend::TopLogits) where that decides the token, else the row.
  void compute_logits() {
    const auto vocab = static_cast<size_t>(vocab_);
    if (model_.backend().host_memory()) {
      model_.forward(batch_, pool_, std::span<float>(logits_).first(static_cast<size_t>(n_logit_rows_) * vocab));
      return;
    }
    model_.run(batch_, pool_);
    int n_whole = 0;
    for (Scheduled& sc : scheduled_) {
      if (sc.logits_row < 0) continue;
      const SamplingParams& p = sc.seq->request->request.sampling;
      sc.from_head = Sampler::head_suffices(p, sc.seq->grammar.has_value());
      n_whole += sc.from_head ? 0 : 1;
    }
    if (n_whole < n_logit_rows_) model_.read_top_logits(std::span(heads_).first(static_cast<size_t>(n_logit_rows_)));
    if (n_whole == n_logit_rows_) {
      model_.read_logits(0, std::span<float>(logits_).first(static_cast<size_t>(n_logit_rows_) * vocab));
    } else if (n_whole > 0) {
      for (const Scheduled& sc : scheduled_) {
        if (sc.logits_row < 0 || sc.from_head) continue;
        model_.read_logits(sc.logits_row, std::span<float>(logits_).subspan(static_cast<size_t>(sc.logits_row) * vocab, vocab));
      }
    }
  }

  void schedule(Sequence& s, int n_rows, int& budget) {
    const int seq = batch_.add_sequence(s.blocks);
    const int end = s.n_computed + n_rows;
    const bool wants_logits = end == static_cast<int>(s.tokens.size());
    for (int p = s.n_computed; p < end; ++p) {
      batch_.add_token(s.tokens[static_cast<size_t>(p)], p, seq, wants_logits && p + 1 == end);
    }
    scheduled_.push_back({&s, n_rows, wants_logits ? n_logit_rows_++ : -1});
    budget -= n_rows;
  }

  bool grow(Sequence& s, int n_tokens) {
    while (static_cast<int>(s.blocks.size()) * kv::kBlockTokens < n_tokens) {
      const auto b = cache_.allocate();
      if (!b) return false;
      s.blocks.push_back(*b);
    }
    return true;
  }

  // Takes the prompt's cached full blocks, then reserves blocks for the rest of its tokens. The block holding
  // the last token is never taken from the cache: that token must be computed to give logits.
  bool admit(Sequence& s) {
    const int n_tokens = static_cast<int>(s.tokens.size());
    const int max_cached = (n_tokens - 1) / kv::kBlockTokens;
    uint64_t parent = 0;
    int queries = 0;
    while (static_cast<int>(s.blocks.size()) < max_cached && cache_.enabled()) {
      const auto first = s.tokens.begin() + static_cast<std::ptrdiff_t>(s.blocks.size()) * kv::kBlockTokens;
      const std::span<const int32_t> tokens(&*first, kv::kBlockTokens);
      ++queries;
      const auto b = cache_.acquire_cached(parent, tokens);
      if (!b) break;
      s.blocks.push_back(*b);
      parent = kv::PrefixCache::block_key(parent, tokens);
      s.block_keys.push_back(parent);
    }
    const int cached_blocks = static_cast<int>(s.blocks.size());
    if (cached_blocks < max_cached && prefix_being_computed(s, cached_blocks)) {
      // Its next block is being prefilled by a running sequence right now: wait a step or two and take it
      // from the cache rather than compute it twice.
      cache_.release_all(s.blocks);
      s.block_keys.clear();
      return false;
    }
    const int needed = (n_tokens + kv::kBlockTokens - 1) / kv::kBlockTokens - cached_blocks;
    // Leave a block per running sequence for its next decode, so admission does not force a preemption.
    const int headroom = running_.empty() ? 0 : static_cast<int>(running_.size());
    if (cache_.available_blocks() < needed + headroom) {
      cache_.release_all(s.blocks);
      s.block_keys.clear();
      return false;
    }
    grow(s, n_tokens);
    s.n_computed = cached_blocks * kv::kBlockTokens;
    s.state = SequenceState::Running;
    s.admitted_at = ++admissions_;
    cache_queries_ += static_cast<uint64_t>(queries);
    cache_hits_ += static_cast<uint64_t>(cached_blocks);
    RequestState& r = *s.request;
    if (!s.preempted) {
      prompt_tokens_ += s.n_prompt;
      prompt_tokens_cached_ += static_cast<uint64_t>(std::min<int>(s.n_computed, static_cast<int>(s.n_prompt)));
      if (s.choice == 0) {
        r.usage.cached_prompt_tokens = s.n_computed;
        count_admitted(r);
      }
    }
    s.preempted = false;
    return true;
  }

  // Whether a running sequence still prefilling has the same tokens as `s` up to the end of block `block`
  // and has not computed that block yet (so it will be published shortly).
  bool prefix_being_computed(const Sequence& s, int block) const {
    if (!cache_.enabled()) return false;
    const size_t end = static_cast<size_t>(block + 1) * kv::kBlockTokens;
    for (const Sequence* r : running_) {
      if (r->remaining() <= 1 || r->tokens.size() < end || static_cast<size_t>(r->n_computed) >= end) continue;
      if (std::equal(s.tokens.begin(), s.tokens.begin() + static_cast<std::ptrdiff_t>(end), r->tokens.begin())) {
        return true;
      }
    }
    return false;
  }

  void preempt(Sequence& s) {
    std::erase(running_, &s);
    cache_.release_all(s.blocks);
    s.block_keys.clear();
    s.n_computed = 0;
    s.preempted = true;
    make_waiting(s);
    ++preemptions_;
  }

  // Offers each block that became full and computed to the prefix cache.
  void publish_full_blocks(Sequence& s) {
    const size_t full = static_cast<size_t>(s.n_computed / kv::kBlockTokens);
    while (s.block_keys.size() < full) {
      const size_t i = s.block_keys.size();
      const uint64_t parent = i == 0 ? 0 : s.block_keys[i - 1];
      const std::span<const int32_t> tokens(s.tokens.data() + i * kv::kBlockTokens, kv::kBlockTokens);
      cache_.publish(s.blocks[i], parent, tokens);
      s.block_keys.push_back(kv::PrefixCache::block_key(parent, tokens));
    }
  }

  bool is_stop_token(const RequestState& r, int32_t token) const {
    if (!r.request.stop.ignore_eos && tokenizer_.is_end_of_generation(token)) return true;
    const auto& ids = r.request.stop.stop_token_ids;
    return std::find(ids.begin(), ids.end(), token) != ids.end();
  }

  // Samples the sequence's next token from its logits row and delivers it (text, logprobs, finish).
  void emit_token(Sequence& s, const Scheduled& sc) {
    RequestState& r = *s.request;
    const SamplingParams& params = r.request.sampling;
    const bool want_logprobs = params.top_logprobs >= 0;
    const backend::TopLogits* head = sc.from_head ? &heads_[static_cast<size_t>(sc.logits_row)] : nullptr;
    int32_t token = 0;
    if (head) {
      token = Sampler::sample_from_head(*head);
    } else {
      const std::span<float> row(logits_.data() + static_cast<size_t>(sc.logits_row) * static_cast<size_t>(vocab_),
                                 static_cast<size_t>(vocab_));
      if (want_logprobs) std::copy(row.begin(), row.end(), raw_row_.begin());
      AllowedTokens allowed;
      if (s.grammar) {
        const auto* mask = grammar_mask(s);
        if (!mask) return;
        allowed = {mask->bits, mask->ids};
      }
      token = sampler_.sample(row, params, s.tokens, s.n_prompt, s.rng, allowed);
    }
    const bool grammar_done = s.grammar && s.grammar->advance(token) && s.grammar->finished();
    s.tokens.push_back(token);
    ++s.n_generated;
    ++r.usage.completion_tokens;
    ++generated_tokens_;
    if (s.choice == 0 && s.n_generated == 1) release_later_choices(r);

    GenerationEvent e;
    e.choice = s.choice;
    e.tokens.push_back(token);
    if (want_logprobs) {
      e.logprobs.push_back({token, head ? Sampler::logprob_from_head(*head, token) : sampler_.logprob_of(raw_row_, token)});
      if (params.top_logprobs > 0) {
        e.top_logprobs.emplace_back();
        if (head) {
          Sampler::top_logprobs_from_head(*head, params.top_logprobs, e.top_logprobs.back());
        } else {
          sampler_.top_logprobs(raw_row_, params.top_logprobs, e.top_logprobs.back());
        }
      }
    }

    if (is_stop_token(r, token)) {
      e.finish = FinishReason::Stop;
    } else if (auto matched = s.stops.push(s.detokenizer.push(token), e.text)) {
      e.finish = FinishReason::Stop;
      e.matched_stop = std::move(*matched);
    } else if (grammar_done) {
      e.finish = FinishReason::Stop;
    } else if (s.n_generated >= r.max_tokens || static_cast<int>(s.tokens.size()) >= context_length_) {
      e.finish = FinishReason::Length;
    }
    if (!e.finish) {
      r.channel->set_usage(r.usage);
      r.channel->push(std::move(e));
      return;
    }
    if (e.matched_stop.empty()) {
      // The stream ends: an unfinished character and any held-back text are released.
      if (auto matched = s.stops.push(s.detokenizer.finish(), e.text)) {
        e.finish = FinishReason::Stop;
        e.matched_stop = std::move(*matched);
      } else {
        s.stops.flush(e.text);
      }
    }
    finish_sequence(s, std::move(e));
  }

  // The tokens the sequence's grammar allows now; nullptr (and the sequence ended with an error) when it
  // allows none or its matcher outgrew its limits.
  const grammar::TokenMask* grammar_mask(Sequence& s) {
    std::string error;
    try {
      const grammar::TokenMask& mask = s.grammar->allowed();
      if (mask.allowed > 0) return &mask;
      error = "the grammar allows no token of this vocabulary here";
    } catch (const std::exception& e) {
      error = e.what();
    }
    GenerationEvent e;
    e.choice = s.choice;
    e.finish = FinishReason::Error;
    e.error = error;
    finish_sequence(s, std::move(e));
    return nullptr;
  }

  void publish_stats() {
    EngineStats st;
    st.running = static_cast<int>(running_.size());
    st.waiting = static_cast<int>(waiting_.size());
    st.kv_blocks_total = cache_.total_blocks();
    st.kv_blocks_used = cache_.used_blocks();
    st.prefix_cache_queries = cache_queries_;
    st.prefix_cache_hits = cache_hits_;
    st.prompt_tokens = prompt_tokens_;
    st.prompt_tokens_cached = prompt_tokens_cached_;
    st.generated_tokens = generated_tokens_;
    st.steps = steps_;
    st.preemptions = preemptions_;
    std::lock_guard lock(stats_mutex_);
    stats_ = st;
  }

  model::Model& model_;
  const tokenizer::Tokenizer& tokenizer_;
  const EngineOptions options_;
  const int vocab_;
  const int parallel_;
  // The longest warm-up prefill: the default token budget, a step's most rows.
  static constexpr int kWarmPrefillRows = 512;
  // PENSIEVE_TRACE_STEPS=1: one line on stderr a step (rows, sequences, time to its logits).
  const bool trace_steps_ = [] {
    const char* v = std::getenv("PENSIEVE_TRACE_STEPS");
    return v != nullptr && std::string_view(v) == "1";
  }();
  const int token_budget_;
  kv::KvBlockPool pool_;
  kv::PrefixCache cache_;
  const int context_length_;
  Sampler sampler_;
  std::shared_ptr<Inbox> inbox_;
  uint64_t next_order_ = 0;  // guarded by inbox_->mutex

  // Engine thread only.
  std::vector<std::shared_ptr<RequestState>> active_;
  std::vector<Sequence*> waiting_;  // sorted by goes_before
  std::vector<Sequence*> running_;  // admission order
  model::Batch batch_;
  std::vector<Scheduled> scheduled_;
  int n_logit_rows_ = 0;
  std::vector<float> logits_;
  std::vector<float> raw_row_;
  std::vector<backend::TopLogits> heads_;
  uint64_t admissions_ = 0;
  uint64_t cache_queries_ = 0, cache_hits_ = 0, prompt_tokens_ = 0, prompt_tokens_cached_ = 0;
  uint64_t generated_tokens_ = 0, steps_ = 0, preemptions_ = 0;

  mutable std::mutex stats_mutex_;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Engine> make_serving_engine(model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                            const EngineOptions& options) {
  return std::make_unique<ServingEngine>(model, tokenizer, options);
}

}  // namespace pensieve::engine
