// Statistics against straightforward two-pass computations over the same values.
#include "edge-os/monitoring/stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace segwan::controller {
namespace {

struct TwoPass {
  double mean = 0, var = 0, min = 0, max = 0, jitter = 0;
};
TwoPass Compute(const std::vector<double>& v) {
  TwoPass t;
  for (double x : v) t.mean += x;
  t.mean /= static_cast<double>(v.size());
  for (double x : v) t.var += (x - t.mean) * (x - t.mean);
  t.var /= static_cast<double>(v.size() - 1);
  t.min = *std::min_element(v.begin(), v.end());
  t.max = *std::max_element(v.begin(), v.end());
  for (size_t i = 1; i < v.size(); ++i) t.jitter += std::fabs(v[i] - v[i - 1]);
  t.jitter /= static_cast<double>(v.size() - 1);
  return t;
}

std::vector<double> Delays(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(15.0, 0.4);  // ms, like a 15 ms link with jitter
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(RunningStats, MatchesTwoPass) {
  const auto v = Delays(10'000, 1);
  RunningStats r;
  for (double x : v) r.Add(x);
  const auto t = Compute(v);
  EXPECT_EQ(r.count(), v.size());
  EXPECT_NEAR(r.mean(), t.mean, 1e-9);
  EXPECT_NEAR(r.variance(), t.var, 1e-9);
  EXPECT_DOUBLE_EQ(r.min(), t.min);
  EXPECT_DOUBLE_EQ(r.max(), t.max);
  EXPECT_NEAR(r.jitter(), t.jitter, 1e-9);
}

TEST(RunningStats, StaysExactFarFromZero) {
  // The naive sum-of-squares formula loses everything here; Welford must not.
  std::vector<double> v;
  for (int i = 0; i < 1000; ++i) v.push_back(1e9 + (i % 7) * 0.001);
  RunningStats r;
  for (double x : v) r.Add(x);
  EXPECT_NEAR(r.variance(), Compute(v).var, 1e-9);
}

TEST(RunningStats, MergeEqualsOnePass) {
  const auto v = Delays(5'000, 2);
  for (size_t cut : {size_t{1}, size_t{777}, size_t{4'999}}) {
    RunningStats a, b, all;
    for (size_t i = 0; i < v.size(); ++i) {
      (i < cut ? a : b).Add(v[i]);
      all.Add(v[i]);
    }
    a.Merge(b);
    EXPECT_EQ(a.count(), all.count());
    EXPECT_NEAR(a.mean(), all.mean(), 1e-9) << cut;
    EXPECT_NEAR(a.variance(), all.variance(), 1e-9) << cut;
    EXPECT_NEAR(a.jitter(), all.jitter(), 1e-9) << cut;
    EXPECT_DOUBLE_EQ(a.min(), all.min());
    EXPECT_DOUBLE_EQ(a.max(), all.max());
  }
}

TEST(RunningStats, RoundTripsThroughJson) {
  RunningStats r;
  for (double x : Delays(100, 3)) r.Add(x);
  const auto back = RunningStats::FromJson(r.ToJson());
  EXPECT_EQ(back.count(), r.count());
  EXPECT_DOUBLE_EQ(back.mean(), r.mean());
  EXPECT_DOUBLE_EQ(back.variance(), r.variance());
  EXPECT_DOUBLE_EQ(back.jitter(), r.jitter());
}

TEST(LogHistogram, QuantilesWithinBucketPrecision) {
  auto v = Delays(20'000, 4);
  LogHistogram h;
  for (double x : v) h.Add(std::llround(x * 1e6));
  for (double q : {0.5, 0.9, 0.99}) {
    auto copy = v;
    const double exact = Percentile(copy, q) * 1e6;
    EXPECT_NEAR(*h.Quantile(q), exact, exact * 0.008) << q;
  }
}

TEST(LogHistogram, BucketsAreMonotonicAndCoverNegatives) {
  int32_t prev = LogHistogram::Bucket(-5'000'000'000LL);
  for (int64_t v = -5'000'000'000LL; v < 5'000'000'000LL; v += 999'983) {
    const int32_t b = LogHistogram::Bucket(v);
    ASSERT_GE(b, prev) << v;
    prev = b;
    const double mid = LogHistogram::BucketMiddle(b);
    ASSERT_NEAR(mid, static_cast<double>(v), std::max(1.0, std::fabs(static_cast<double>(v)) * 0.008)) << v;
  }
  LogHistogram h;
  h.Add(-2'000'000);  // a reflector clock 2 ms behind
  EXPECT_NEAR(*h.Quantile(0.5), -2'000'000, 16'000);
}

TEST(LogHistogram, MergeAndJsonKeepCounts) {
  LogHistogram a, b;
  for (int i = 0; i < 100; ++i) a.Add(i * 1000);
  for (int i = 0; i < 50; ++i) b.Add(i * 3000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 150u);
  const auto back = LogHistogram::FromJson(a.ToJson());
  EXPECT_EQ(back.count(), 150u);
  EXPECT_EQ(*back.Quantile(0.5), *a.Quantile(0.5));
}

Sample At(uint64_t t1_ms, uint32_t seq, uint32_t rseq, double direct_ms, double return_ms) {
  Sample s;
  s.seq = seq;
  s.reflector_seq = rseq;
  s.t1 = t1_ms * 1'000'000;
  s.t2 = s.t1 + static_cast<uint64_t>(direct_ms * 1e6);
  s.t3 = s.t2 + 20'000;
  s.t4 = s.t3 + static_cast<uint64_t>(return_ms * 1e6);
  return s;
}

TEST(IntervalBuilder, ClosesAtTheBoundaryWithExactAggregates) {
  IntervalBuilder b(1000, false);
  std::vector<double> direct;
  for (uint32_t i = 0; i < 10; ++i) {
    const double d = 10.0 + i * 0.1;
    direct.push_back(d);
    EXPECT_FALSE(b.Add(At(5000 + i * 100, i, i, d, 4.0), 5000 + i * 100));
  }
  auto closed = b.Add(At(6000, 10, 10, 12.0, 4.0), 6000);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->start_ms, 5000);
  EXPECT_EQ(closed->delays.direct.count(), 10u);
  const auto t = Compute(direct);
  EXPECT_NEAR(closed->delays.direct.mean(), t.mean, 1e-6);
  EXPECT_NEAR(closed->delays.direct.jitter(), t.jitter, 1e-6);
  EXPECT_NEAR(closed->delays.back.mean(), 4.0, 1e-6);
  EXPECT_NEAR(closed->delays.round_trip.mean(), t.mean + 4.0, 1e-6);
  EXPECT_NEAR(closed->p[0][0], 10.4, 1e-6);  // nearest rank: the 5th of 10
  EXPECT_NEAR(closed->p[0][2], 10.9, 1e-6);
  EXPECT_EQ(closed->sent, 10u);
  EXPECT_EQ(closed->received, 10u);
  EXPECT_EQ(closed->lost, 0u);
  EXPECT_FALSE(b.CloseIfDue(7000, 500));  // the open interval [6000, 7000) is not due yet
  auto last = b.CloseIfDue(7600, 500);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->start_ms, 6000);
  EXPECT_EQ(last->delays.direct.count(), 1u);
  EXPECT_FALSE(b.Peek());
}

TEST(IntervalBuilder, StatefulReflectorSplitsLossByDirection) {
  // 20 packets: seq 3 and 7 lost on the way out (the reflector's counter does not move),
  // seq 12 lost on the way back (the reflector counted it, the sender never got it).
  IntervalBuilder b(10'000, true);
  uint32_t rseq = 0;
  for (uint32_t seq = 0; seq < 20; ++seq) {
    if (seq == 3 || seq == 7) continue;
    const uint32_t r = rseq++;
    if (seq == 12) continue;
    b.Add(At(100 + seq * 10, seq, r, 5, 5), 100 + seq * 10);
  }
  auto a = b.Peek();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->sent, 20u);
  EXPECT_EQ(a->received, 17u);
  EXPECT_EQ(a->lost, 3u);
  EXPECT_EQ(a->lost_direct, 2u);
  EXPECT_EQ(a->lost_return, 1u);
}

TEST(IntervalBuilder, EachIntervalCountsItsOwnPackets) {
  IntervalBuilder b(1000, true);
  for (uint32_t seq = 0; seq < 10; ++seq) b.Add(At(seq * 100, seq, seq, 5, 5), seq * 100);
  // second interval: seq 10..19 with 15 lost on the way out
  std::optional<IntervalAggregate> first;
  uint32_t r = 10;
  for (uint32_t seq = 10; seq < 20; ++seq) {
    if (seq == 15) continue;
    if (auto c = b.Add(At(seq * 100, seq, r++, 5, 5), seq * 100)) first = c;
  }
  ASSERT_TRUE(first);
  EXPECT_EQ(first->sent, 10u);
  EXPECT_EQ(first->lost, 0u);
  auto second = b.Peek();
  EXPECT_EQ(second->sent, 10u);
  EXPECT_EQ(second->received, 9u);
  EXPECT_EQ(second->lost_direct, 1u);
  EXPECT_EQ(second->lost_return, 0u);
}

}  // namespace
}  // namespace segwan::controller
