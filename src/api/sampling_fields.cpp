#include "api/sampling_fields.h"

#include <algorithm>
#include <limits>

#include "api/api_error.h"

namespace pensieve::api {

void read_openai_sampling(const Fields& body, int32_t vocab_size, engine::SamplingParams& out) {
  if (auto v = body.number("temperature", 0.0, 2.0)) out.temperature = static_cast<float>(*v);
  if (auto v = body.number("top_p", 0.0, 1.0)) out.top_p = static_cast<float>(*v);
  if (auto v = body.integer("top_k", 0, vocab_size)) out.top_k = static_cast<int>(*v);
  if (auto v = body.number("min_p", 0.0, 1.0)) out.min_p = static_cast<float>(*v);
  if (auto v = body.number("presence_penalty", -2.0, 2.0)) out.presence_penalty = static_cast<float>(*v);
  if (auto v = body.number("frequency_penalty", -2.0, 2.0)) out.frequency_penalty = static_cast<float>(*v);
  if (auto v = body.number("repetition_penalty", 0.01, 10.0)) out.repetition_penalty = static_cast<float>(*v);
  if (auto v = body.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    out.seed = static_cast<uint64_t>(*v);
  }
  if (const Json* bias = body.object("logit_bias")) {
    Fields b(*bias, body.path_of("logit_bias"));
    for (const auto& [key, value] : bias->items()) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      if (id < 0 || id >= vocab_size) {
        throw invalid_field(b.path_of(key), "is not a token id of this model (0.." + std::to_string(vocab_size - 1) + ")");
      }
      const double bias_value = *b.number(key, -100.0, 100.0);
      out.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(bias_value));
    }
  }
}

std::vector<std::string> read_stop_strings(const Fields& body, std::string_view name) {
  constexpr size_t kMaxStops = 16;
  std::vector<std::string> stops;
  const Json* v = body.get(name);
  if (!v) return stops;
  if (v->is_string()) {
    if (!v->get_ref<const std::string&>().empty()) stops.push_back(v->get<std::string>());
    return stops;
  }
  if (!v->is_array()) throw invalid_field(body.path_of(name), "must be a string or an array of strings");
  if (v->size() > kMaxStops) throw invalid_field(body.path_of(name), "holds more than 16 stop strings");
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& s = (*v)[i];
    if (!s.is_string()) {
      throw invalid_field(body.path_of(name) + "[" + std::to_string(i) + "]", "must be a string, not " + type_name(s));
    }
    if (!s.get_ref<const std::string&>().empty()) stops.push_back(s.get<std::string>());
  }
  return stops;
}

int read_max_tokens(const Fields& body, const ServedModel& model, size_t prompt_tokens) {
  const int context_length = model.engine().context_length();
  const RequestPolicy& policy = model.policy();
  int room = std::max(0, context_length - static_cast<int>(prompt_tokens));
  if (policy.max_tokens_limit > 0) room = std::min(room, policy.max_tokens_limit);
  std::optional<int64_t> asked = body.integer("max_completion_tokens", 1, std::numeric_limits<int32_t>::max());
  if (!asked) asked = body.integer("max_tokens", 1, std::numeric_limits<int32_t>::max());
  if (!asked && policy.default_max_tokens > 0) asked = policy.default_max_tokens;
  if (!asked) return room;
  return static_cast<int>(std::min<int64_t>(*asked, room));
}

}  // namespace pensieve::api
