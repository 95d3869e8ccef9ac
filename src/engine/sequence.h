#pragma once
// The engine thread's view of a request: one Sequence per choice, each with its own tokens, KV blocks,
// random stream, detokenizer and stop-string state. Only the engine thread touches these.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/event_channel.h"
#include "engine/sampler.h"
#include "engine/stop_strings.h"
#include "grammar/token_constraint.h"
#include "tokenizer/incremental_detokenizer.h"

namespace pensieve::engine {

struct RequestState;

enum class SequenceState {
  Pending,   // a later choice waiting for choice 0's prompt blocks to land in the prefix cache
  Waiting,   // in the waiting queue (new, or preempted and to be recomputed)
  Running,
  Finished,
};

struct Sequence {
  Sequence(RequestState& owner, int choice_index, uint64_t seed, const tokenizer::Tokenizer& tokenizer,
           const GenerationRequest& r)
      : request(&owner),
        choice(choice_index),
        tokens(r.prompt),
        n_prompt(r.prompt.size()),
        rng(seed),
        detokenizer(tokenizer, /*render_special=*/false, /*strip_leading_space=*/false),
        stops(r.stop.stop_strings) {
    if (r.grammar) grammar.emplace(r.grammar);
  }

  // Positions fed to the model next: [n_computed, tokens.size()). One left means a decode step.
  int remaining() const { return static_cast<int>(tokens.size()) - n_computed; }

  RequestState* request;
  int choice;
  SequenceState state = SequenceState::Pending;
  std::vector<int32_t> tokens;  // prompt, then every generated token
  size_t n_prompt;
  int n_computed = 0;           // positions whose K/V are in `blocks`
  int n_generated = 0;
  std::vector<int32_t> blocks;
  std::vector<uint64_t> block_keys;  // prefix-cache key of each full, computed block
  bool preempted = false;
  uint64_t admitted_at = 0;          // admission counter: the newest running sequence is preempted first
  SequenceRng rng;
  tokenizer::IncrementalDetokenizer detokenizer;
  StopStringMatcher stops;
  std::optional<grammar::GrammarCursor> grammar;  // where this choice stands in the request's grammar
};

struct RequestState {
  GenerationRequest request;
  std::shared_ptr<EventChannel> channel;
  uint64_t order = 0;     // submission order, FCFS within a priority
  int max_tokens = 0;     // request.stop.max_tokens clamped to the context
  std::vector<std::unique_ptr<Sequence>> choices;
  int unfinished = 0;
  bool counted_as_queued = true;  // until choice 0 is first admitted (the queue limit counts requests)
  Usage usage;
};

}  // namespace pensieve::engine
