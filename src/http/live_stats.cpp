#include "http/live_stats.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pensieve::http {

void RecentSamples::add(double value, StatsClock::time_point now) {
  samples_.emplace_back(now, value);
  if (samples_.size() > max_samples_) samples_.pop_front();
  expire(now);
}

void RecentSamples::expire(StatsClock::time_point now) {
  while (!samples_.empty() && samples_.front().first < now - window_) samples_.pop_front();
}

size_t RecentSamples::count(StatsClock::time_point now) {
  expire(now);
  return samples_.size();
}

double RecentSamples::quantile(double q, StatsClock::time_point now) {
  expire(now);
  if (samples_.empty()) return 0;
  std::vector<double> values;
  values.reserve(samples_.size());
  for (const auto& s : samples_) values.push_back(s.second);
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  const double rank = std::ceil(std::clamp(q, 0.0, 1.0) * double(values.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

void RateWindow::add(double amount, StatsClock::time_point now) {
  events_.emplace_back(now, amount);
  while (events_.front().first < now - window_) events_.pop_front();
}

double RateWindow::per_second(StatsClock::time_point now) {
  while (!events_.empty() && events_.front().first < now - window_) events_.pop_front();
  double sum = 0;
  for (const auto& e : events_) sum += e.second;
  return sum / std::chrono::duration<double>(window_).count();
}

void LiveStats::observe_first(const std::string& model, size_t tokens, double ttft, StatsClock::time_point now) {
  ModelLiveStats& m = models_[model];
  m.ttft.add(ttft, now);
  m.generated.add(double(tokens), now);
}

void LiveStats::observe_next(const std::string& model, size_t tokens, size_t steps, double gap,
                             StatsClock::time_point now) {
  ModelLiveStats& m = models_[model];
  for (size_t i = 0; i < steps; ++i) m.inter_token.add(gap, now);
  m.generated.add(double(tokens), now);
}

}  // namespace pensieve::http
