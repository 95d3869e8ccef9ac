// GET /v1/stats: what the web page's dashboard polls once a second. The engine's gauges and counters (as in
// /v1/status) joined with the sliding windows of live_stats.h, and the ratios the page would otherwise have to
// derive, per model (each with the device it runs on) and summed over all of them.
#include <nlohmann/json.hpp>

#include "http/server_state.h"

namespace pensieve::http {

namespace {

using nlohmann::json;

json percentiles(RecentSamples& samples, StatsClock::time_point now) {
  return {{"p50", samples.quantile(0.50, now)}, {"p95", samples.quantile(0.95, now)}, {"samples", samples.count(now)}};
}

// null rather than a division by zero: "no data yet" is not "0 %".
json ratio(double part, double whole) { return whole > 0 ? json(part / whole) : json(nullptr); }

}  // namespace

std::string Server::Impl::stats_json() {
  const auto now = StatsClock::now();
  json models_json = json::array();
  double tokens_per_second = 0;
  int running = 0, waiting = 0, max_parallel = 0;
  const std::vector<registry::ModelStatus> statuses = registry ? registry->status() : std::vector<registry::ModelStatus>{};
  for (const registry::ModelStatus& m : statuses) {
    // A model not loaded now still has its windows (they drain to zero) but no engine figures.
    const engine::EngineStats s = m.engine.value_or(engine::EngineStats{});
    ModelLiveStats& l = live.model(m.listing.name);
    const double rate = l.generated.per_second(now);
    tokens_per_second += rate;
    running += s.running;
    waiting += s.waiting;
    max_parallel += m.engine ? m.max_parallel : 0;
    models_json.push_back(
        {{"id", m.listing.name},
         {"state", m.listing.loaded ? "loaded" : (m.listing.loading ? "loading" : "available")},
         {"context_length", m.context_length},
         {"tokens_per_second", rate},
         {"streams", {{"running", s.running}, {"waiting", s.waiting}, {"max_parallel", m.max_parallel}}},
         {"ttft_seconds", percentiles(l.ttft, now)},
         {"inter_token_seconds", percentiles(l.inter_token, now)},
         {"kv", {{"blocks_used", s.kv_blocks_used}, {"blocks_total", s.kv_blocks_total},
                 {"used_fraction", ratio(s.kv_blocks_used, s.kv_blocks_total)}}},
         {"prefix_cache", {{"queries", s.prefix_cache_queries}, {"hits", s.prefix_cache_hits},
                           {"hit_rate", ratio(double(s.prefix_cache_hits), double(s.prefix_cache_queries))}}},
         {"tokens", {{"prompt", s.prompt_tokens}, {"prompt_cached", s.prompt_tokens_cached}, {"generated", s.generated_tokens}}},
         {"preemptions", s.preemptions},
         {"device", {{"name", s.device},
                     {"memory_allocated_bytes", s.device_memory_allocated},
                     {"memory_total_bytes", s.device_memory_total},
                     {"memory_free_bytes", s.device_memory_free}}}});
  }
  const double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json j = {{"status", ready ? "ok" : (stopping ? "stopping" : "loading")},
            {"uptime_seconds", uptime},
            {"windows", {{"rate_seconds", std::chrono::duration<double>(kRateWindow).count()},
                         {"latency_seconds", std::chrono::duration<double>(kLatencyWindow).count()}}},
            {"totals", {{"tokens_per_second", tokens_per_second}, {"running", running}, {"waiting", waiting},
                        {"max_parallel", max_parallel}}},
            {"http", {{"open_connections", sessions.size()}, {"active_requests", active_requests},
                      {"requests_total", metrics.requests()}}},
            {"models", std::move(models_json)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace pensieve::http
