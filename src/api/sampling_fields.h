#pragma once
// Sampling and stop fields shared by the OpenAI endpoints (and, in part, Anthropic's), read into the engine's
// SamplingParams / StopCriteria with range checks.
#include "api/json_fields.h"
#include "api/served_model.h"
#include "engine/request.h"

namespace pensieve::api {

// temperature, top_p, top_k, min_p, presence/frequency/repetition penalty, seed, logit_bias.
void read_openai_sampling(const Fields& body, int32_t vocab_size, engine::SamplingParams& out);
// "stop" (a string or an array of strings), "stop_sequences" for Anthropic.
std::vector<std::string> read_stop_strings(const Fields& body, std::string_view name);
// max_tokens (or max_completion_tokens) when given, else the model's default; never more than the policy's
// limit nor what the context leaves after the prompt.
int read_max_tokens(const Fields& body, const ServedModel& model, size_t prompt_tokens);

}  // namespace pensieve::api
