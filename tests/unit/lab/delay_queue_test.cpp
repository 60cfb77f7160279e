#include "delay_queue.h"

#include <gtest/gtest.h>

#include <cmath>

namespace segwan::lab {
namespace {

TEST(DelayQueue, NoImpairmentReleasesAtOnceInOrder) {
  DelayQueue q(1, 100);
  for (uint8_t i = 0; i < 5; ++i) {
    ASSERT_EQ(q.Push({i}, 1000, {}), DelayQueue::Verdict::kQueued);
  }
  for (uint8_t i = 0; i < 5; ++i) {
    ASSERT_FALSE(q.Empty());
    EXPECT_EQ(q.NextRelease(), 1000);
    EXPECT_EQ(q.Pop().bytes[0], i);  // equal release times keep arrival order
  }
  EXPECT_TRUE(q.Empty());
}

TEST(DelayQueue, FixedDelayIsExact) {
  DelayQueue q(1, 100);
  q.Push({1}, 5'000, Impairment{.delay_us = 20'000});
  EXPECT_EQ(q.NextRelease(), 5'000 + 20'000'000);
}

TEST(DelayQueue, JitterKeepsTheMeanAndStaysInBounds) {
  DelayQueue q(42, 1'000'000);
  const Impairment imp{.delay_us = 10'000, .jitter_us = 2'000};
  constexpr int kN = 200'000;
  for (int i = 0; i < kN; ++i) q.Push({}, 0, imp);
  double sum = 0;
  int64_t lo = INT64_MAX, hi = 0;
  while (!q.Empty()) {
    const int64_t r = q.NextRelease();
    q.Pop();
    sum += static_cast<double>(r);
    lo = std::min(lo, r);
    hi = std::max(hi, r);
  }
  EXPECT_NEAR(sum / kN, 10'000'000.0, 20'000.0);  // within 20 us of 10 ms
  EXPECT_GE(lo, 8'000'000);
  EXPECT_LE(hi, 12'000'000);
  EXPECT_LT(lo, 8'100'000);  // the spread really is there
  EXPECT_GT(hi, 11'900'000);
}

TEST(DelayQueue, JitterNeverMakesNegativeDelay) {
  DelayQueue q(7, 10'000);
  for (int i = 0; i < 10'000; ++i) q.Push({}, 100, Impairment{.delay_us = 1, .jitter_us = 500});
  while (!q.Empty()) {
    EXPECT_GE(q.NextRelease(), 100);
    q.Pop();
  }
}

TEST(DelayQueue, LossRateMatchesSetting) {
  DelayQueue q(3, 1'000'000);
  constexpr int kN = 400'000;
  int lost = 0;
  for (int i = 0; i < kN; ++i) {
    if (q.Push({}, 0, Impairment{.loss_ppm = 20'000}) == DelayQueue::Verdict::kLost) ++lost;
  }
  // 2% of 400k = 8000; binomial stddev ~ 89.
  EXPECT_NEAR(lost, 8000, 450);
  EXPECT_EQ(q.Size(), static_cast<size_t>(kN - lost));
}

TEST(DelayQueue, FullQueueOverflowsInsteadOfGrowing) {
  DelayQueue q(1, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.Push({}, 0, {}), DelayQueue::Verdict::kQueued);
  EXPECT_EQ(q.Push({}, 0, {}), DelayQueue::Verdict::kOverflow);
  EXPECT_EQ(q.Size(), 3u);
}

TEST(LatenessHistogram, QuantilesAreBucketEdgesAndTheMaxIsExact) {
  LatenessHistogram h;
  EXPECT_EQ(h.QuantileNs(0.99), 0);
  for (int i = 0; i < 98; ++i) h.Add(3'000);  // 3 us: the first bucket
  h.Add(-500);                                  // early counts as on time
  h.Add(251'000);                               // 251 us late
  EXPECT_EQ(h.QuantileNs(0.5), 10'000);
  EXPECT_EQ(h.QuantileNs(0.99), 10'000);
  EXPECT_EQ(h.QuantileNs(1.0), 260'000);
  EXPECT_EQ(h.MaxNs(), 251'000);
  h.Add(9'000'000'000);  // past the last bucket: counted there
  EXPECT_EQ(h.QuantileNs(1.0), static_cast<int64_t>(LatenessHistogram::kBuckets) * LatenessHistogram::kBucketNs);
  EXPECT_EQ(h.MaxNs(), 9'000'000'000);
  EXPECT_EQ(h.Count(), 101u);
}

TEST(LatenessHistogram, QuantilesOverSeveralDirectionsCountEveryPacketOnce) {
  LatenessHistogram quiet, busy;
  for (int i = 0; i < 10; ++i) quiet.Add(1'000'000);  // 10 packets 1 ms late
  for (int i = 0; i < 990; ++i) busy.Add(5'000);      // 990 on time
  EXPECT_EQ(quiet.QuantileNs(0.99), 1'010'000);
  EXPECT_EQ(busy.QuantileNs(0.99), 10'000);
  // Together: the 10 late ones are the top 1 %, so p99 is on time and p99.5 is 1 ms.
  EXPECT_EQ(LatenessHistogram::QuantileNs({&quiet, &busy}, 0.99), 10'000);
  EXPECT_EQ(LatenessHistogram::QuantileNs({&quiet, &busy}, 0.995), 1'010'000);
}

TEST(EarliestQueue, TheQueueWhoseNextPacketLeavesFirstAcrossDirections) {
  DelayQueue ab(1, 10), ba(2, 10), idle(3, 10);
  std::vector<DelayQueue*> all{&idle, &ab, &ba};
  EXPECT_EQ(EarliestQueue(all), all.size()) << "all empty";
  ab.Push({1}, 1'000, Impairment{30, 0, 0});  // leaves at 31,000
  ba.Push({2}, 5'000, Impairment{10, 0, 0});  // leaves at 15,000
  EXPECT_EQ(EarliestQueue(all), 2u) << "ba";
  ba.Pop();
  EXPECT_EQ(EarliestQueue(all), 1u) << "ab";
  ab.Pop();
  EXPECT_EQ(EarliestQueue(all), all.size());
}

}  // namespace
}  // namespace segwan::lab
