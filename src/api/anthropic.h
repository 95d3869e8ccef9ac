#pragma once
// The Anthropic Messages API: POST /v1/messages (non-streaming message object, or the SSE event sequence
// message_start, content_block_start, ping, content_block_delta*, content_block_stop, message_delta,
// message_stop) and POST /v1/messages/count_tokens. Errors use {"type":"error","error":{...}}.
#include <span>
#include <string_view>

#include "api/generation.h"
#include "api/served_model.h"

namespace pensieve::api {

Outcome anthropic_messages(std::span<const ServedModel* const> models, std::string_view body);
Reply anthropic_count_tokens(std::span<const ServedModel* const> models, std::string_view body);

}  // namespace pensieve::api
