#pragma once
// What a caller hands the serving engine and what it gets back. The HTTP side builds a GenerationRequest from
// an API body and reads GenerationEvents from a RequestHandle; it never touches model state.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pensieve::grammar {
class TokenConstraint;
}

namespace pensieve::engine {

struct SamplingParams {
  float temperature = 1.0f;           // 0: greedy (argmax)
  int top_k = 0;                      // 0: off
  float top_p = 1.0f;                 // 1: off
  float min_p = 0.0f;                 // 0: off
  float repetition_penalty = 1.0f;    // 1: off; applied over the last repetition_last_n tokens
  int repetition_last_n = 64;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;       // same seed -> same output whatever else is in the batch
  int top_logprobs = -1;              // -1: no logprobs; 0: the chosen token's; N: plus the N best alternatives
};

struct StopCriteria {
  int max_tokens = 256;
  std::vector<int32_t> stop_token_ids;    // besides the model's end-of-generation tokens
  std::vector<std::string> stop_strings;  // text is held back until it cannot be the start of one of these
  bool ignore_eos = false;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  StopCriteria stop;
  int n = 1;              // choices sharing the prompt's KV blocks
  int priority = 0;       // higher goes first among waiting requests; FCFS within a priority
  // Constrained decoding: every choice's output stays inside this grammar (built for the engine's vocabulary;
  // shared, so its cached masks serve every request that uses it). A choice whose grammar is complete and
  // allows nothing more ends with FinishReason::Stop.
  std::shared_ptr<grammar::TokenConstraint> grammar;
};

enum class FinishReason { Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

// One step of one choice. `text` is the new text that can be shown now (complete UTF-8, no partial stop
// string); it may be empty while text is held back. A choice ends with exactly one event whose `finish` is set.
struct GenerationEvent {
  int choice = 0;
  std::vector<int32_t> tokens;                  // tokens this event accounts for (may be empty at finish)
  std::string text;
  std::vector<TokenLogprob> logprobs;           // per token in `tokens`, when asked
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  std::optional<FinishReason> finish;
  std::string matched_stop;                     // the stop string that ended it, if one did
  std::string error;                            // with FinishReason::Error
};

struct Usage {
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;  // served from the prefix cache
  int completion_tokens = 0;     // all choices together
};

}  // namespace pensieve::engine
