#pragma once
// What the dashboard shows that the Prometheus counters cannot: recent tokens/s and latency percentiles per
// model, over a sliding window (the histograms in metrics.h are cumulative since start and coarse-bucketed).
// Touched only from the server's event loop thread, so nothing here locks.
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <string>

namespace pensieve::http {

using StatsClock = std::chrono::steady_clock;

// The samples of the last `window` (at most `max_samples` of them, the newest kept), for percentiles.
class RecentSamples {
 public:
  RecentSamples(StatsClock::duration window, size_t max_samples) : window_(window), max_samples_(max_samples) {}
  void add(double value, StatsClock::time_point now);
  // The q-quantile (0..1, nearest rank) of the samples still in the window at `now`; 0 when there are none.
  double quantile(double q, StatsClock::time_point now);
  size_t count(StatsClock::time_point now);

 private:
  void expire(StatsClock::time_point now);
  StatsClock::duration window_;
  size_t max_samples_;
  std::deque<std::pair<StatsClock::time_point, double>> samples_;
};

// Events counted over the last `window`: a rate per second.
class RateWindow {
 public:
  explicit RateWindow(StatsClock::duration window) : window_(window) {}
  void add(double amount, StatsClock::time_point now);
  double per_second(StatsClock::time_point now);

 private:
  StatsClock::duration window_;
  std::deque<std::pair<StatsClock::time_point, double>> events_;
};

// Latencies over the last 30 s (the newest 8192); tokens/s over the last 3 s: short enough to follow a load
// that starts or stops, long enough that a poll once a second does not see single engine steps.
inline constexpr std::chrono::seconds kLatencyWindow{30};
inline constexpr size_t kLatencySamples = 8192;
inline constexpr std::chrono::seconds kRateWindow{3};

struct ModelLiveStats {
  RecentSamples ttft{kLatencyWindow, kLatencySamples};
  RecentSamples inter_token{kLatencyWindow, kLatencySamples};
  RateWindow generated{kRateWindow};
};

class LiveStats {
 public:
  // A batch of `tokens` arriving at `now` for `model`: the first of a request (after `ttft` seconds), or a
  // later one that spans `steps` engine steps, `gap` seconds apart each.
  void observe_first(const std::string& model, size_t tokens, double ttft, StatsClock::time_point now);
  void observe_next(const std::string& model, size_t tokens, size_t steps, double gap, StatsClock::time_point now);
  // The model's windows (created empty when it has seen no request yet).
  ModelLiveStats& model(const std::string& id) { return models_[id]; }

 private:
  std::map<std::string, ModelLiveStats> models_;
};

}  // namespace pensieve::http
