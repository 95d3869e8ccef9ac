#pragma once
// The OpenAI API: POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/{id}]. Bodies are validated field by
// field (400 naming the field), turned into an engine request, and the engine's events are shaped into
// chat.completion / text_completion objects or their SSE chunks ending with `data: [DONE]`.
#include <span>
#include <string_view>

#include "api/generation.h"
#include "api/model_listing.h"
#include "api/served_model.h"

namespace pensieve::api {

Outcome openai_chat_completions(std::span<const ServedModel* const> models, std::string_view body);
Outcome openai_completions(std::span<const ServedModel* const> models, std::string_view body);
Reply openai_models(std::span<const ServedModel* const> models);
// GET /v1/models/{id}: one model (any of its names), or a 404.
Reply openai_model(std::span<const ServedModel* const> models, std::string_view id);
// The same over every model the server can load, resident or not (each entry says its "state").
Reply openai_models(std::span<const ListedModel> models);
Reply openai_model(std::span<const ListedModel> models, std::string_view id);

}  // namespace pensieve::api
