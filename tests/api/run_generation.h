#pragma once
// Drives an adapter's Generation to its end without a socket: the bytes a client would get (SSE, or the
// whole body).
#include <chrono>
#include <string>
#include <vector>

#include "api/generation.h"

namespace pensieve::testing {

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
