// The alternate-marking arithmetic on its own: when a period is due, what it counted, and
// what happens when an agent restarts or the controller misses switches.
#include <gtest/gtest.h>

#include "edge-os/monitoring/loss_periods.h"

namespace segwan::controller {
namespace {

constexpr uint32_t kPeriodMs = 10'000;
constexpr uint64_t kSwitch = 1'000'000'000'000'000'000ULL;  // TAI ns of the last switch

IngressReading Tx(uint64_t index, uint32_t colour, uint64_t c0, uint64_t c1) {
  return {index, colour, kSwitch, {c0, c1}};
}

TEST(LossPeriods, APeriodIsDueHalfAPeriodAfterTheSwitch) {
  LossCursor cur;
  const auto tx = Tx(1, 1, 100, 0);  // colour 0 painted 100 packets, then it switched to 1
  EXPECT_EQ(NextLossStep(cur, tx, kSwitch + 4'999'999'999ULL, kPeriodMs), LossStepKind::kNothing);
  EXPECT_EQ(NextLossStep(cur, tx, kSwitch + 5'000'000'000ULL, kPeriodMs), LossStepKind::kNeedEgress);
  cur.period_index = 1;  // closed already
  EXPECT_EQ(NextLossStep(cur, tx, kSwitch + 9'000'000'000ULL, kPeriodMs), LossStepKind::kNothing);
}

TEST(LossPeriods, SentLessReceivedOfTheColourThatStopped) {
  LossCursor cur;
  auto c = CloseLossPeriod(cur, Tx(1, 1, 100, 7), {97, 7}, kPeriodMs, 37);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->colour, 0u);
  EXPECT_EQ(c.period->index, 0u);
  EXPECT_EQ(c.period->sent, 100u);
  EXPECT_EQ(c.period->received, 97u);
  EXPECT_EQ(c.period->lost, 3);
  EXPECT_DOUBLE_EQ(c.period->loss_ratio, 0.03);
  EXPECT_EQ(c.period->end_ms, static_cast<int64_t>(kSwitch / 1'000'000) - 37'000) << "UTC";
  EXPECT_EQ(c.period->start_ms, c.period->end_ms - kPeriodMs);
  EXPECT_EQ(c.cursor.period_index, 1u);
  // Then colour 1 stops (never closed before: all it counted), then colour 0 again, counted
  // from its own previous close.
  cur = c.cursor;
  c = CloseLossPeriod(cur, Tx(2, 0, 100, 57), {97, 55}, kPeriodMs, 37);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->colour, 1u);
  EXPECT_EQ(c.period->sent, 57u);
  EXPECT_EQ(c.period->received, 55u);
  cur = c.cursor;
  c = CloseLossPeriod(cur, Tx(3, 1, 350, 57), {347, 55}, kPeriodMs, 37);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->sent, 250u);
  EXPECT_EQ(c.period->lost, 0);
}

TEST(LossPeriods, MissedSwitchesFoldIntoOneRecordThatSaysSo) {
  LossCursor cur;
  cur.period_index = 1;
  cur.tx = {100, 0};
  cur.rx = {100, 0};
  // Three switches later colour 0 stopped again: what it counted since is one record of 3 periods.
  auto c = CloseLossPeriod(cur, Tx(4, 1, 400, 90), {390, 90}, kPeriodMs, 0);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->spans, 3u);
  EXPECT_EQ(c.period->start_ms, c.period->end_ms - 3 * static_cast<int64_t>(kPeriodMs));
  EXPECT_EQ(c.period->sent, 300u);
  EXPECT_EQ(c.period->lost, 10);
}

TEST(LossPeriods, ARestartedIngressIsFollowedAndCountersThatWentBackGiveNoPeriod) {
  LossCursor cur;
  cur.period_index = 9;
  cur.tx = {1000, 900};
  cur.rx = {1000, 900};
  EXPECT_EQ(NextLossStep(cur, Tx(2, 0, 5, 5), kSwitch + 10'000'000'000ULL, kPeriodMs), LossStepKind::kRestarted);
  cur = RebaseLossCursor(cur, 2);
  EXPECT_EQ(cur.period_index, 2u);
  auto c = CloseLossPeriod(cur, Tx(3, 0, 5, 8), {5, 8}, kPeriodMs, 0);
  EXPECT_FALSE(c.period) << "a counter below the cursor is a restart, not negative traffic";
  EXPECT_EQ(c.cursor.tx[1], 8u) << "the cursor starts over from the new counters";
  EXPECT_EQ(c.cursor.period_index, 3u);
  c = CloseLossPeriod(c.cursor, Tx(4, 1, 7, 20), {7, 20}, kPeriodMs, 0);
  EXPECT_FALSE(c.period) << "the other colour's counter went back too";
  // The session's periods go on after the 9 it had: the restarted ingress's 5th is its 10th.
  c = CloseLossPeriod(c.cursor, Tx(5, 0, 7, 30), {7, 29}, kPeriodMs, 0);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->index, 9u) << "not 3: that number is an earlier period of the session";
  EXPECT_EQ(c.period->lost, 1);
  EXPECT_EQ(c.cursor.next_index, 10);
}

TEST(LossPeriods, TheNextReadIsDueHalfAPeriodAfterTheSwitchThatEndsTheNextPeriod) {
  LossCursor cur;
  cur.period_index = 3;
  // Read 5 ms after switch 4: period 3 ends there but is not final until half a period later.
  const auto just_switched = Tx(4, 0, 10, 10);
  EXPECT_EQ(NextLossStep(cur, just_switched, kSwitch + 5'000'000, kPeriodMs), LossStepKind::kNothing);
  const uint64_t due = NextLossDueTaiNs(cur, just_switched, kPeriodMs);
  EXPECT_GE(due, kSwitch + kPeriodMs * 500'000ULL);
  EXPECT_LT(due, kSwitch + kPeriodMs * 600'000ULL);
  EXPECT_EQ(NextLossStep(cur, just_switched, due, kPeriodMs), LossStepKind::kNeedEgress);
  // Once closed, the next is due half a period after the next switch.
  cur.period_index = 4;
  EXPECT_EQ(NextLossDueTaiNs(cur, just_switched, kPeriodMs), due + kPeriodMs * 1'000'000ULL);
}

TEST(LossPeriods, ACursorStoredBeforeTheSessionNumberedItsPeriodsNumbersThemAsTheIngressDid) {
  auto old = nlohmann::json::parse(R"({"tx": [10, 0], "rx": [10, 0], "period_index": 4})").get<LossCursor>();
  EXPECT_EQ(old.next_index, -1);
  auto c = CloseLossPeriod(old, Tx(5, 0, 10, 30), {10, 30}, kPeriodMs, 0);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->index, 4u);
  EXPECT_EQ(c.cursor.next_index, 5);
}

// The flow moved to another SID list: the ingress was read, a packet of the colour being
// painted left it and reached the egress, then the egress was read. Counted from those
// readings, the period would show that packet as sent and never received.
TEST(LossPeriods, AMovedFlowReportsNoPeriodWhoseBaselineTheTwoFirstReadsSplit) {
  LossCursor before;
  before.next_index = 7;
  before.period_index = 40;  // the old list's count of switches
  const auto now = kSwitch + 6'000'000'000ULL;  // colour 0 stopped 6 s (over half a period) ago: final
  auto cur = MovedLossCursor(before, Tx(3, 1, 50, 20), {50, 21}, now, kPeriodMs);
  EXPECT_EQ(cur.period_index, 3u) << "the new list's own count";
  EXPECT_EQ(cur.NextIndex(), 7u) << "the session's numbers go on";
  EXPECT_EQ(cur.unsettled, 0b10u) << "colour 1 was painted between the reads; colour 0 was final";

  // Colour 1 stops, all 100 packets painted after the ingress's read received: counted from
  // the move's readings, the packet that crossed between them would be 1 lost. It is a baseline.
  auto c = CloseLossPeriod(cur, Tx(4, 0, 50, 120), {50, 120}, kPeriodMs, 0);
  EXPECT_FALSE(c.period);
  EXPECT_EQ(c.cursor.unsettled, 0u);
  EXPECT_EQ(c.cursor.next_index, 7);
  // Colour 0, settled at the move, reports from the move's reading on.
  c = CloseLossPeriod(c.cursor, Tx(5, 1, 150, 120), {149, 120}, kPeriodMs, 0);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->index, 7u);
  EXPECT_EQ(c.period->sent, 100u);
  EXPECT_EQ(c.period->lost, 1);
  // Colour 1 from its baseline: nothing lost.
  c = CloseLossPeriod(c.cursor, Tx(6, 0, 150, 220), {149, 220}, kPeriodMs, 0);
  ASSERT_TRUE(c.period);
  EXPECT_EQ(c.period->sent, 100u);
  EXPECT_EQ(c.period->lost, 0);

  // Moved less than half a period after a switch: the colour that stopped may still be arriving.
  cur = MovedLossCursor(before, Tx(3, 1, 50, 20), {49, 21}, kSwitch + 1'000'000'000ULL, kPeriodMs);
  EXPECT_EQ(cur.unsettled, 0b11u);
  // A cursor stored before this field existed has every colour settled.
  EXPECT_EQ(nlohmann::json::parse(R"({"tx": [1, 0], "rx": [1, 0], "period_index": 4})").get<LossCursor>().unsettled, 0u);
}

}  // namespace
}  // namespace segwan::controller
