// The head of a logits row (TopLogits) against a full stable sort of the row and a direct log-sum-exp, on
// rows with ties (which must come out in ascending id order, as a stable argmax picks), rows narrower than
// the head, and a row of zeros of both signs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "backend/backend.h"

namespace pensieve::backend {
namespace {

// Best first; equal logits by ascending id (std::stable_sort keeps the id order of equals).
std::vector<int32_t> sorted_ids(const std::vector<float>& row) {
  std::vector<int32_t> ids(row.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return row[size_t(a)] > row[size_t(b)]; });
  return ids;
}

double direct_log_sum_exp(const std::vector<float>& row) {
  double sum = 0;
  for (float l : row) sum += std::exp(static_cast<double>(l));
  return std::log(sum);
}

void expect_head_of(const std::vector<float>& row) {
  TopLogits head{};
  compute_top_logits(row, head);
  const auto ids = sorted_ids(row);
  const int k = std::min<int>(kTopLogits, static_cast<int>(row.size()));
  ASSERT_EQ(head.count, k);
  for (int i = 0; i < k; ++i) {
    EXPECT_EQ(head.ids[i], ids[size_t(i)]) << "rank " << i;
    EXPECT_EQ(head.logits[i], row[size_t(ids[size_t(i)])]) << "rank " << i;
  }
  EXPECT_NEAR(head.log_sum_exp, direct_log_sum_exp(row), 1e-4);
}

TEST(TopLogits, RandomRowsMatchAStableSort) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (size_t vocab : {1u, 5u, 64u, 65u, 640u, 5000u}) {
    std::vector<float> row(vocab);
    for (float& x : row) x = d(rng);
    expect_head_of(row);
  }
}

TEST(TopLogits, TiesComeOutInIdOrder) {
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> level(0, 9);  // ten distinct values over 3000 ids: every rank is a tie
  std::vector<float> row(3000);
  for (float& x : row) x = static_cast<float>(level(rng)) * 0.5f;
  expect_head_of(row);
}

TEST(TopLogits, ZerosOfBothSignsAreOneValue) {
  std::vector<float> row(1000, 0.0f);
  for (size_t i = 0; i < row.size(); i += 3) row[i] = -0.0f;
  TopLogits head{};
  compute_top_logits(row, head);
  for (int i = 0; i < kTopLogits; ++i) EXPECT_EQ(head.ids[i], i);
  EXPECT_NEAR(head.log_sum_exp, std::log(1000.0), 1e-5);
}

TEST(TopLogits, TheCpuBackendOpDoesEachRowAlone) {
  auto be = make_cpu_backend(2);
  constexpr int kRows = 3, kVocab = 700;
  std::vector<float> rows(kRows * kVocab);
  std::mt19937 rng(9);
  std::normal_distribution<float> d;
  for (float& x : rows) x = d(rng);
  std::vector<TopLogits> out(kRows);
  be->top_logits(rows.data(), kRows, kVocab, out.data());
  for (int r = 0; r < kRows; ++r) {
    TopLogits alone{};
    compute_top_logits(std::span<const float>(rows).subspan(size_t(r) * kVocab, kVocab), alone);
    EXPECT_TRUE(std::equal(alone.ids, alone.ids + kTopLogits, out[size_t(r)].ids)) << "row " << r;
    EXPECT_EQ(alone.log_sum_exp, out[size_t(r)].log_sum_exp);
  }
}

}  // namespace
}  // namespace pensieve::backend
