// SLA steering's arithmetic, without a network: probes cut into windows (delay, p90, jitter,
// loss from sequence numbers) and the choice of a direction's path from its candidates'
// windows (violation after K windows, the best compliant candidate, return after hold-down,
// damping of an impairment that comes and goes).
#include <gtest/gtest.h>

#include "edge-os/steering/judge.h"

namespace segwan::controller {
namespace {

TEST(ProbeWindows, DelayPercentileJitterAndLossPerWindow) {
  ProbeWindows w(300, 100);  // windows start at multiples of 300 ms
  w.Add(0, 900, 5.0);
  w.Add(1, 1000, 7.0);
  w.Add(2, 1100, 6.0);
  w.Add(3, 1200, 5.0);  // next window
  auto m = w.Close(1199);
  EXPECT_TRUE(m.empty()) << "a window is judged only once it has ended";
  m = w.Close(1200);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].end_ms, 1200);
  EXPECT_EQ(m[0].received, 3u);
  EXPECT_EQ(m[0].lost, 0u);
  EXPECT_DOUBLE_EQ(m[0].delay_ms, 6.0);
  EXPECT_DOUBLE_EQ(m[0].delay_p90_ms, 7.0);
  EXPECT_DOUBLE_EQ(m[0].jitter_ms, 1.5);  // |7-5|, |6-7|
  // seq 4 is lost, 5 arrives: the window of 3..5 lost one of three.
  w.Add(5, 1400, 5.0);
  m = w.Close(1500);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].received, 2u);
  EXPECT_EQ(m[0].lost, 1u);
  EXPECT_NEAR(m[0].loss_pct, 100.0 / 3, 1e-9);
}

TEST(ProbeWindows, ASilentWindowLostItsProbesOnceAndLateOnesAreNotCountedAgain) {
  ProbeWindows w(300, 100);
  for (uint32_t s = 0; s < 3; ++s) w.Add(s, 300 + 100 * s, 5.0);
  ASSERT_EQ(w.Close(600).size(), 1u);
  auto m = w.Close(900);  // 600..900: nothing came back
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].received, 0u);
  EXPECT_EQ(m[0].lost, 3u);
  EXPECT_DOUBLE_EQ(m[0].loss_pct, 100.0);
  w.Add(4, 650, 9.0);  // late, for the window already judged
  for (uint32_t s = 6; s < 9; ++s) w.Add(s, 900 + 100 * (s - 6), 5.0);
  m = w.Close(1200);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].received, 3u);
  EXPECT_EQ(m[0].lost, 0u) << "3..5 were charged to the silent window already";
}

TEST(SlaLimits, TheFirstBrokenLimitIsNamed) {
  SlaLimits l{.delay_ms = 10, .jitter_ms = 2, .loss_pct = 1};
  WindowMeasure ok{.received = 3, .delay_ms = 9, .jitter_ms = 1};
  EXPECT_FALSE(Breaks(ok, l));
  WindowMeasure slow = ok;
  slow.delay_ms = 12;
  EXPECT_EQ(Breaks(slow, l), "delay_ms");
  WindowMeasure lossy = ok;
  lossy.loss_pct = 33;
  EXPECT_EQ(Breaks(lossy, l), "loss_pct");
  EXPECT_EQ(Breaks(WindowMeasure{}, SlaLimits{}), "loss_pct") << "nothing back breaks any SLA";
  EXPECT_GT(Excess(slow, l), 0);
  EXPECT_LT(Excess(slow, l), Excess(WindowMeasure{.received = 3, .delay_ms = 30}, l));
}

class JudgeTest : public ::testing::Test {
 protected:
  // direct (preferred), p1, p2; one-way delay at most 10 ms; 3 windows of 300 ms; 30 s hold-down.
  DirectionJudge j_{{"direct", "p1", "p2"}, SlaLimits{.delay_ms = 10}, ProbeProfile{100, 300, 3, 30}, "direct", std::nullopt};
  int64_t now_ = 0;
  std::vector<SteeringEvent> events_;
  int switches_ = 0;
  // One window of each candidate at these delays (0: nothing came back).
  void Step(double direct, double p1, double p2) {
    now_ += 300;
    for (auto [name, d] : {std::pair{"direct", direct}, std::pair{"p1", p1}, std::pair{"p2", p2}}) {
      WindowMeasure m{.end_ms = now_, .received = d > 0 ? 3u : 0u, .lost = d > 0 ? 0u : 3u, .delay_ms = d,
                      .delay_p90_ms = d, .loss_pct = d > 0 ? 0.0 : 100.0};
      auto r = j_.Window(name, m);
      for (auto& e : r.events) events_.push_back(e);
      switches_ += r.switch_to ? 1 : 0;
    }
  }
  std::vector<std::string> Kinds() const {
    std::vector<std::string> k;
    for (const auto& e : events_) k.push_back(e.kind + ":" + e.path + (e.to_path.empty() ? "" : ">" + e.to_path));
    return k;
  }
};

TEST_F(JudgeTest, AViolatedPathMovesToTheBestCompliantOneAfterKWindows) {
  for (int i = 0; i < 5; ++i) Step(5, 8, 6);
  Step(20, 8, 6);
  Step(20, 8, 6);
  EXPECT_EQ(j_.active(), "direct") << "two bad windows are not yet a violation";
  Step(20, 8, 6);
  EXPECT_EQ(j_.active(), "p2");
  EXPECT_EQ(Kinds(), (std::vector<std::string>{"violation:direct", "switch:direct>p2", "clear:p2"}));
  EXPECT_DOUBLE_EQ(events_[1].measured.delay_ms, 20);
  EXPECT_EQ(*events_[1].limits.delay_ms, 10);
}

TEST_F(JudgeTest, TrafficReturnsToThePreferredPathAfterTheHoldDown) {
  for (int i = 0; i < 3; ++i) Step(20, 8, 6);
  ASSERT_EQ(j_.active(), "p2");
  const int64_t healed = now_;
  while (j_.active() == "p2" && now_ < healed + 60'000) Step(5, 8, 6);
  EXPECT_EQ(j_.active(), "direct");
  EXPECT_GE(now_ - healed, 30'000);
  EXPECT_LE(now_ - healed, 30'300);
  EXPECT_EQ(switches_, 2);
}

TEST_F(JudgeTest, WhenNothingCompliesTheLeastBadClearlyBetterPathIsTakenAndSaidSo) {
  for (int i = 0; i < 3; ++i) Step(50, 12, 40);
  EXPECT_EQ(j_.active(), "p1");
  // p1 carries the traffic and violates too: said, once.
  EXPECT_EQ(Kinds(), (std::vector<std::string>{"violation:direct", "no_compliant:direct", "switch:direct>p1",
                                                "violation:p1"}));
  events_.clear();
  for (int i = 0; i < 10; ++i) Step(50, 12, 40);
  EXPECT_TRUE(events_.empty()) << "no new episode, no new event, no move";
  EXPECT_EQ(j_.active(), "p1");
}

TEST_F(JudgeTest, NoCandidateBetterMeansNoSwitch) {
  for (int i = 0; i < 10; ++i) Step(12, 13, 0);
  EXPECT_EQ(j_.active(), "direct");
  EXPECT_EQ(switches_, 0);
}

TEST_F(JudgeTest, AnImpairmentTogglingEveryTwoSecondsMovesTrafficOnce) {
  for (int i = 0; i < 5; ++i) Step(5, 8, 6);
  const int64_t start = now_;
  while (now_ < start + 30'000) {
    const bool impaired = ((now_ - start) / 2000) % 2 == 0;
    Step(impaired ? 20 : 5, 8, 6);
  }
  EXPECT_EQ(switches_, 1);
  EXPECT_EQ(j_.active(), "p2");
}

TEST_F(JudgeTest, WithinTheHoldDownOnlyASteadyPathIsTaken) {
  for (int i = 0; i < 200; ++i) Step(5, 8, 6);  // all steady for a minute
  for (int i = 0; i < 3; ++i) Step(20, 8, 6);
  ASSERT_EQ(j_.active(), "p2");
  // p2 breaks a second later; direct has healed but is not steady, p1 is: p1.
  for (int i = 0; i < 3; ++i) Step(5, 8, 20);
  EXPECT_EQ(j_.active(), "p1");
}

}  // namespace
}  // namespace segwan::controller
