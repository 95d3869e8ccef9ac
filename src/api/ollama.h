#pragma once
// The Ollama API (github.com/ollama/ollama docs/api.md), for the many local tools that speak only it:
// POST /api/chat and /api/generate (NDJSON lines streamed by default, one object with "stream": false),
// GET /api/tags, POST /api/show, GET /api/ps, GET /api/version. Errors are {"error": "..."}.
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "api/api_error.h"
#include "api/generation.h"
#include "api/model_listing.h"
#include "api/served_model.h"

namespace pensieve::api {

Outcome ollama_chat(std::span<const ServedModel* const> models, std::string_view body);
Outcome ollama_generate(std::span<const ServedModel* const> models, std::string_view body);

// The model list (/api/tags), the resident ones (/api/ps), one model's details (/api/show; the body names it).
Reply ollama_tags(std::span<const ListedModel> models);
Reply ollama_ps(std::span<const ListedModel> models);
Reply ollama_show(std::span<const ListedModel> models, std::string_view body);
Reply ollama_version();

std::string ollama_error_body(const ApiError& e);

// The body's keep_alive: absent (nullopt), or how long the model stays resident once idle, where an inner
// nullopt is "for ever" (a negative value). Numbers are seconds; strings are Go durations ("5m", "1h30m", "0").
std::optional<std::optional<std::chrono::milliseconds>> ollama_keep_alive(std::string_view body);

}  // namespace pensieve::api
