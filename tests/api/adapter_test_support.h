#pragma once
// What the adapter tests share: the fixture tokenizer, and a Generation driven to its end without a socket.
#include <chrono>
#include <string>
#include <vector>

#include "api/generation.h"
#include "fixture_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::testing {

// The tiny Llama 3 fixture's vocabulary (loaded once).
inline const tokenizer::Tokenizer& tok() { return fixture_tokenizer(); }

// The bytes a client would get: SSE when streaming, else the whole body.
inline std::string run_to_end(api::Generation& g) {
  std::string out = g.streaming() ? g.stream_open() : "";
  std::vector<engine::GenerationEvent> events;
  for (;;) {
    events.clear();
    const bool more = g.handle().drain(events);
    if (g.streaming()) out += g.stream_events(events);
    else g.collect(events);
    if (!more) break;
    if (events.empty()) g.handle().wait(std::chrono::milliseconds(50));
  }
  return g.streaming() ? out + g.stream_close() : g.reply().body;
}

}  // namespace pensieve::testing
