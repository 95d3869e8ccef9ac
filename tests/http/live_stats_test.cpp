// The dashboard's sliding windows: percentiles by nearest rank over the samples still in the window, and rates
// over a fixed window, both forgetting what is older.
#include "http/live_stats.h"

#include <gtest/gtest.h>

namespace pensieve::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const StatsClock::time_point t0{};

TEST(RecentSamples, NearestRankPercentiles) {
  RecentSamples s(seconds(30), 100);
  for (int v = 10; v >= 1; --v) s.add(v, t0);  // 1..10, added out of order
  EXPECT_EQ(s.count(t0), 10u);
  EXPECT_DOUBLE_EQ(s.quantile(0.50, t0), 5);   // ceil(0.5 * 10) = 5th smallest
  EXPECT_DOUBLE_EQ(s.quantile(0.95, t0), 10);  // ceil(9.5) = 10th
  EXPECT_DOUBLE_EQ(s.quantile(0.0, t0), 1);
  EXPECT_DOUBLE_EQ(s.quantile(1.0, t0), 10);
}

TEST(RecentSamples, EmptyIsZero) {
  RecentSamples s(seconds(30), 100);
  EXPECT_EQ(s.count(t0), 0u);
  EXPECT_DOUBLE_EQ(s.quantile(0.5, t0), 0);
}

TEST(RecentSamples, ForgetsSamplesOlderThanTheWindow) {
  RecentSamples s(seconds(30), 100);
  s.add(100, t0);
  s.add(1, t0 + seconds(20));
  EXPECT_DOUBLE_EQ(s.quantile(0.95, t0 + seconds(25)), 100);
  EXPECT_EQ(s.count(t0 + seconds(31)), 1u);
  EXPECT_DOUBLE_EQ(s.quantile(0.95, t0 + seconds(31)), 1);
  EXPECT_EQ(s.count(t0 + seconds(51)), 0u);
}

TEST(RecentSamples, KeepsOnlyTheNewestWhenFull) {
  RecentSamples s(seconds(30), 3);
  for (double v : {50.0, 1.0, 2.0, 3.0}) s.add(v, t0);
  EXPECT_EQ(s.count(t0), 3u);
  EXPECT_DOUBLE_EQ(s.quantile(1.0, t0), 3);  // the 50 was pushed out
}

TEST(RateWindow, SumsTheWindowPerSecond) {
  RateWindow r(seconds(2));
  EXPECT_DOUBLE_EQ(r.per_second(t0), 0);
  r.add(10, t0);
  r.add(30, t0 + milliseconds(500));
  EXPECT_DOUBLE_EQ(r.per_second(t0 + seconds(1)), 20);  // 40 tokens over a 2 s window
  EXPECT_DOUBLE_EQ(r.per_second(t0 + milliseconds(2100)), 15);  // the first 10 fell out
  EXPECT_DOUBLE_EQ(r.per_second(t0 + seconds(3)), 0);
}

TEST(LiveStats, FirstBatchIsTtftLaterOnesAGapPerStep) {
  LiveStats live;
  live.observe_first("a", 1, 0.25, t0);
  live.observe_next("a", 3, 3, 0.01, t0 + milliseconds(30));
  ModelLiveStats& a = live.model("a");
  EXPECT_EQ(a.ttft.count(t0 + seconds(1)), 1u);
  EXPECT_DOUBLE_EQ(a.ttft.quantile(0.5, t0 + seconds(1)), 0.25);
  EXPECT_EQ(a.inter_token.count(t0 + seconds(1)), 3u);
  EXPECT_DOUBLE_EQ(a.generated.per_second(t0 + seconds(1)), 4.0 / 3.0);  // 4 tokens over the 3 s rate window
  live.observe_next("a", 4, 2, 0.02, t0 + milliseconds(70));  // two choices, two steps each
  EXPECT_EQ(a.inter_token.count(t0 + seconds(1)), 5u);
  EXPECT_DOUBLE_EQ(a.inter_token.quantile(1.0, t0 + seconds(1)), 0.02);
  EXPECT_EQ(live.model("b").ttft.count(t0), 0u);  // models are kept apart
}

}  // namespace
}  // namespace pensieve::http
