// Leader election on a real PostgreSQL: one controller leads and the others know who; the
// lock goes with its holder's session, so a follower takes over when the holder dies; a
// leader whose session fails (server gone, or ended by an administrator) is told at once.
#include "edge-os/ha/leader.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "edge-os/store/store.h"
#include "test_store.h"

namespace segwan::controller {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

LeaderElection::Options Named(const std::string& uri, const std::string& id) {
  return {.uri = uri,
          .self = {.id = id, .http = "http://" + id + ":8080", .grpc = id + ":50051"},
          .poll = 100ms,
          .check = 200ms,
          .answer = 500ms};
}

// Campaign until `limit`: true when it leads.
bool CampaignFor(LeaderElection& e, std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  return e.Campaign([&] { return Clock::now() > until; });
}

class LeaderTest : public testing::FreshDatabaseTest {
 protected:
  void SetUp() override {
    FreshDatabaseTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(Store::Open(uri_));  // the schema, with segwan_leader
  }
  std::unique_ptr<LeaderElection> Election(const std::string& id) {
    auto e = LeaderElection::Open(Named(uri_, id));
    EXPECT_TRUE(e) << (e ? "" : e.error().ToString());
    return e ? std::move(*e) : nullptr;
  }
};

TEST_F(LeaderTest, OneLeadsAndTheOthersKnowWho) {
  auto a = Election("ctl-a"), b = Election("ctl-b");
  EXPECT_TRUE(CampaignFor(*a, 2s));
  EXPECT_TRUE(a->leading());
  EXPECT_FALSE(CampaignFor(*b, 500ms)) << "the lock is taken";
  EXPECT_FALSE(b->leading());
  auto who = b->Leader();
  ASSERT_TRUE(who);
  EXPECT_EQ(who->id, "ctl-a");
  EXPECT_EQ(who->http, "http://ctl-a:8080");
  EXPECT_EQ(who->grpc, "ctl-a:50051");
  EXPECT_GT(who->since_ms, 0);
  EXPECT_GT(who->epoch, 0u);
  EXPECT_EQ(who->epoch, a->Leader()->epoch) << "what the leader sends is what followers read";
}

TEST_F(LeaderTest, WhenTheLeaderGoesAFollowerTakesOverWithinAPoll) {
  auto a = Election("ctl-a"), b = Election("ctl-b");
  ASSERT_TRUE(CampaignFor(*a, 2s));
  const uint64_t a_epoch = a->Leader()->epoch;
  std::atomic<bool> b_leads{false};
  std::atomic<int64_t> took_ms{-1};
  std::atomic<bool> gone{false};
  Clock::time_point went;
  std::thread follower([&] {
    b_leads = CampaignFor(*b, 10s);
    if (gone) took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - went).count();
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(b_leads) << "not while a holds it";
  went = Clock::now();
  gone = true;
  a.reset();  // its session ends, as with a process killed
  follower.join();
  ASSERT_TRUE(b_leads);
  std::printf("took over after %lld ms (poll 100 ms)\n", static_cast<long long>(took_ms.load()));
  auto who = b->Leader();
  ASSERT_TRUE(who);
  EXPECT_EQ(who->id, "ctl-b");
  EXPECT_GT(who->epoch, a_epoch) << "edges refuse the calls of an older epoch: a new leader's must be greater";
  // and again, as the first one comes back and takes over in its turn
  auto c = Election("ctl-a");
  b.reset();
  ASSERT_TRUE(CampaignFor(*c, 10s));
  EXPECT_GT(c->Leader()->epoch, who->epoch);
}

TEST_F(LeaderTest, ALeaderWhoseSessionIsEndedIsToldAndAnotherTakesOver) {
  auto a = Election("ctl-a"), b = Election("ctl-b");
  ASSERT_TRUE(CampaignFor(*a, 2s));
  std::atomic<bool> lost{false};
  a->Watch([&] { lost = true; });
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(lost) << "a healthy session is not reported lost";
  // An administrator ends the leader's session.
  std::unique_ptr<PGconn, decltype(&PQfinish)> admin(PQconnectdb(uri_.c_str()), PQfinish);
  PQclear(PQexec(admin.get(),
                 "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                 "AND objid = 7300003"));
  for (int i = 0; i < 50 && !lost; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(lost);
  EXPECT_FALSE(a->leading());
  EXPECT_TRUE(CampaignFor(*b, 3s));
}

TEST(LeaderFaults, ALeaderWhoseServerDiesIsToldWithinCheckAndAnswer) {
  std::string why;
  auto pg = segwan::testing::TestPostgres::Start(&why);
  if (!pg) GTEST_SKIP() << "no PostgreSQL to test with: " << why;
  ASSERT_TRUE(Store::Open(pg->Uri()));
  auto a = std::move(*LeaderElection::Open(Named(pg->Uri(), "ctl-a")));
  ASSERT_TRUE(CampaignFor(*a, 2s));
  std::atomic<bool> lost{false};
  a->Watch([&] { lost = true; });
  ASSERT_TRUE(pg->Kill());
  for (int i = 0; i < 60 && !lost; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(lost);
  EXPECT_FALSE(a->leading());
  EXPECT_FALSE(a->Leader());
}

}  // namespace
}  // namespace segwan::controller
