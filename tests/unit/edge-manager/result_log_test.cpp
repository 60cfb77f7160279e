// The agent's result log: cursors, acknowledgements, the bound and the loss counts it turns
// into entries of their own.
#include <gtest/gtest.h>

#include "edge-manager/stamp/result_log.h"

namespace segwan::stamp {
namespace {

std::vector<Record> Records(uint16_t ssid, uint32_t first, size_t n) {
  std::vector<Record> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Record{.ssid = ssid, .sender_seq = first + static_cast<uint32_t>(i)});
  return out;
}

std::vector<ResultLog::Entry> ReadAll(const ResultLog& log, uint64_t after) {
  std::vector<ResultLog::Entry> out;
  log.Read(after, 1'000'000, &out);
  return out;
}

TEST(ResultLog, CursorsCountFromOneInOrder) {
  ResultLog log(100, 7);
  EXPECT_EQ(log.id(), 7u);
  log.Append(1, Records(1, 0, 3));
  log.Append(2, Records(2, 10, 2));
  const auto all = ReadAll(log, 0);
  ASSERT_EQ(all.size(), 5u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].cursor, i + 1);
  EXPECT_EQ(all[3].ssid, 2);
  EXPECT_EQ(all[3].record.sender_seq, 10u);
  EXPECT_EQ(log.last_cursor(), 5u);
}

TEST(ResultLog, ReadingAfterACursorSkipsWhatCameBeforeAndAckForgetsIt) {
  ResultLog log(100, 7);
  log.Append(1, Records(1, 0, 10));
  EXPECT_EQ(log.Waiting(4), 6u);
  auto after4 = ReadAll(log, 4);
  ASSERT_EQ(after4.size(), 6u);
  EXPECT_EQ(after4.front().cursor, 5u);
  std::vector<ResultLog::Entry> two;
  EXPECT_EQ(log.Read(4, 2, &two), 2u);
  EXPECT_EQ(two.back().cursor, 6u);
  log.Ack(6);
  EXPECT_EQ(log.size(), 4u);
  // A reader that resumes from before what was forgotten gets what is left, not a gap.
  auto rest = ReadAll(log, 2);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest.front().cursor, 7u);
  log.Ack(100);
  EXPECT_EQ(log.size(), 0u);
  EXPECT_TRUE(ReadAll(log, 0).empty());
  log.Append(1, Records(1, 10, 1));
  EXPECT_EQ(ReadAll(log, 0).front().cursor, 11u);  // cursors never restart in one log
}

TEST(ResultLog, AFullLogCountsWhatItRefusesAndReportsItOnceThereIsRoom) {
  ResultLog log(4, 7);
  log.Append(1, Records(1, 0, 6));  // 4 fit, 2 refused
  EXPECT_EQ(log.size(), 4u);
  EXPECT_EQ(log.dropped_total(), 2u);
  log.Append(1, Records(1, 6, 1));  // still full: a third
  EXPECT_EQ(log.dropped_total(), 3u);
  log.Ack(2);  // room for two: the drop count first, then new records
  log.Append(1, Records(1, 7, 1));
  const auto all = ReadAll(log, 2);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_TRUE(all[2].is_drop);
  EXPECT_EQ(all[2].dropped, 3u);
  EXPECT_EQ(all[2].ssid, 1);
  EXPECT_FALSE(all[3].is_drop);
  EXPECT_EQ(all[3].record.sender_seq, 7u);
}

TEST(ResultLog, EngineDropsBecomeEntriesBeforeTheRecordsAfterThem) {
  ResultLog log(100, 7);
  log.Append(3, Records(3, 5, 2), /*dropped=*/4);
  const auto all = ReadAll(log, 0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(all[0].is_drop);
  EXPECT_EQ(all[0].dropped, 4u);
  EXPECT_EQ(all[1].record.sender_seq, 5u);
}

TEST(ResultLog, RandomIdsDiffer) {
  ResultLog a, b;
  EXPECT_NE(a.id(), 0u);
  EXPECT_NE(a.id(), b.id());
}

}  // namespace
}  // namespace segwan::stamp
