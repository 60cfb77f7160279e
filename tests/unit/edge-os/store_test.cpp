// The store on a real SQLite file: migrations, reopening (a controller restart), batches.
#include "edge-os/store/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace segwan::controller {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("segwan-store-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    path_ = (dir_ / "sub" / "segwan.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<Store> Open() {
    auto s = Store::Open(path_);
    EXPECT_TRUE(s) << (s ? "" : s.error().ToString());
    return s ? std::move(*s) : nullptr;
  }
  std::filesystem::path dir_;
  std::string path_;
};

Sample S(uint32_t seq, uint64_t t1) { return {seq, seq, t1, t1 + 5'000'000, t1 + 5'010'000, t1 + 9'000'000, 63}; }

TEST_F(StoreTest, NewFileIsMigratedToTheLatestSchemaInWalMode) {
  auto s = Open();
  EXPECT_EQ(s->SchemaVersion(), Store::LatestSchemaVersion());
  s.reset();
  SQLite::Database db(path_);
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_TRUE(db.tableExists("samples"));
  EXPECT_TRUE(db.tableExists("aggregates"));
}

TEST_F(StoreTest, AFileFromANewerVersionIsRefused) {
  Open().reset();
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version = 999");
  }
  auto s = Store::Open(path_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
}

TEST_F(StoreTest, EverythingSurvivesAReopen) {
  {
    auto s = Open();
    EXPECT_EQ((*s->NextId("slice-number")), 1u);
    EXPECT_EQ((*s->NextId("slice-number")), 2u);
    EXPECT_EQ((*s->NextId("ssid")), 1u);
    s->PutTenant({"t1", "acme", "abc123", 1000});
    Device d;
    d.id = "edge-a";
    d.enabled = true;
    d.locator = "fc00:0:a::/48";
    d.interfaces = {{"lan0", {"10.10.1.1/24"}, "lan", true}};
    s->PutDevice(d);
    Slice sl;
    sl.id = "sl1";
    sl.tenant_id = "t1";
    sl.number = 1;
    sl.sites = {{"edge-a", "lan0", ""}, {"edge-b", "lan0", ""}};
    s->PutSlice(sl);
    DelaySession ds;
    ds.id = "ds1";
    ds.tenant_id = "t1";
    ds.ssid = 1;
    ds.running = true;
    s->PutSession(ds);
    SessionBatch b;
    b.session_id = "ds1";
    for (uint32_t i = 0; i < 100; ++i) b.samples.push_back(S(i, 1'000'000'000ULL * 100 + i * 10'000'000ULL));
    IntervalAggregate a;
    a.start_ms = 100'000;
    a.length_ms = 30'000;
    for (const auto& x : b.samples) a.delays.Add(x);
    a.p[0][0] = 5.0;
    a.sent = 100;
    a.received = 100;
    b.closed.push_back(a);
    b.counters.received = 100;
    b.counters.max_seq = 99;
    s->WriteBatches({b});
    EXPECT_EQ(s->SamplesStored(), 100u);
    EXPECT_EQ(s->BatchesWritten(), 1u);
  }
  auto s = Open();
  EXPECT_EQ((*s->NextId("slice-number")), 3u);
  ASSERT_EQ((*s->Tenants()).size(), 1u);
  EXPECT_EQ((*s->Tenants())[0].token_sha256, "abc123");
  EXPECT_EQ((*s->LastAggregateEnd("ds1")), 130'000);
  EXPECT_FALSE(*s->LastAggregateEnd("ds9"));
  EXPECT_EQ((*s->GetDevice("edge-a"))->interfaces.at(0).addresses.at(0), "10.10.1.1/24");
  EXPECT_TRUE((*s->GetDevice("edge-a"))->enabled);
  EXPECT_EQ((*s->Slices()).at(0).sites.size(), 2u);
  EXPECT_TRUE((*s->Sessions()).at(0).running);
  EXPECT_EQ((*s->Counters("ds1")).max_seq, 99);
  EXPECT_EQ((*s->SampleCount("ds1")), 100u);
  auto samples = (*s->Samples("ds1", 1'000'000'000ULL * 100 + 50 * 10'000'000ULL, 10));
  ASSERT_EQ(samples.size(), 10u);
  EXPECT_EQ(samples[0].seq, 50u);
  EXPECT_EQ(samples[0].t4 - samples[0].t1, 9'000'000u);
  auto aggs = (*s->Aggregates("ds1", 0, 10));
  ASSERT_EQ(aggs.size(), 1u);
  EXPECT_EQ(aggs[0].delays.direct.count(), 100u);
  EXPECT_NEAR(aggs[0].delays.direct.mean(), 5.0, 1e-9);
  EXPECT_EQ(aggs[0].p[0][0], 5.0);
  EXPECT_EQ((*s->Aggregates("ds1", 129'999, 10)).size(), 1u);  // holds since
  EXPECT_EQ((*s->Aggregates("ds1", 130'000, 10)).size(), 0u);
}

TEST_F(StoreTest, DeletingASessionTakesItsSamplesAndAggregates) {
  auto s = Open();
  DelaySession ds;
  ds.id = "ds1";
  s->PutSession(ds);
  SessionBatch b;
  b.session_id = "ds1";
  b.samples = {S(0, 1000), S(1, 2000)};
  b.closed.push_back(IntervalAggregate{.start_ms = 0, .length_ms = 1000});
  s->WriteBatches({b});
  s->DeleteSession("ds1");
  EXPECT_EQ((*s->SampleCount("ds1")), 0u);
  EXPECT_TRUE((*s->Aggregates("ds1", 0, 10)).empty());
  EXPECT_TRUE((*s->Sessions()).empty());
}

TEST_F(StoreTest, CountersMoveOutOfTheSessionRowAndGoWithTheSession) {
  SessionCounters c;
  c.received = 42;
  c.max_seq = 41;
  {
    auto s = Open();
    DelaySession ds;
    ds.id = "ds1";
    s->PutSession(ds);
  }
  {  // the file as version 7 left it: counters in the session's row
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("DROP TABLE session_counters");
    db.exec("ALTER TABLE samples DROP COLUMN flags");  // (migration 9's)
    db.exec("ALTER TABLE delay_sessions ADD COLUMN counters TEXT NOT NULL DEFAULT '{}'");
    SQLite::Statement u(db, "UPDATE delay_sessions SET counters = ?");
    u.bind(1, nlohmann::json(c).dump());
    u.exec();
    db.exec("PRAGMA user_version = 7");
  }
  auto s = Open();
  EXPECT_EQ(s->SchemaVersion(), Store::LatestSchemaVersion());
  EXPECT_EQ(s->Counters("ds1")->received, 42u);
  EXPECT_EQ(s->Counters("ds1")->max_seq, 41);
  SessionBatch b;
  b.session_id = "ds1";
  b.samples = {S(42, 1000)};
  b.samples[0].flags = Sample::kUnsynchronized;
  b.counters.received = 43;
  ASSERT_TRUE(s->WriteBatches({b}));
  EXPECT_EQ(s->Counters("ds1")->received, 43u);
  EXPECT_EQ(s->Samples("ds1", 0, 10)->at(0).flags, Sample::kUnsynchronized) << "migration 9 keeps a sample's flags";
  ASSERT_TRUE(s->DeleteSession("ds1"));
  EXPECT_EQ(s->Counters("ds1")->received, 0u);
  // A batch that was on its way when the session went does not bring its counters back.
  b.counters.received = 44;
  ASSERT_TRUE(s->WriteBatches({b}));
  EXPECT_EQ(s->Counters("ds1")->received, 0u);
}

TEST_F(StoreTest, PruneRemovesOnlyWhatIsOlder) {
  auto s = Open();
  DelaySession ds;
  ds.id = "ds1";
  s->PutSession(ds);
  SessionBatch b;
  b.session_id = "ds1";
  b.samples = {S(0, 1000), S(1, 2000), S(2, 3000)};
  b.closed = {IntervalAggregate{.start_ms = 0, .length_ms = 1}, IntervalAggregate{.start_ms = 5, .length_ms = 1}};
  s->WriteBatches({b});
  EXPECT_EQ((*s->Prune(2000, 5)), 2u);  // one sample, one aggregate
  EXPECT_EQ((*s->SampleCount("ds1")), 2u);
  EXPECT_EQ((*s->Aggregates("ds1", 0, 10)).size(), 1u);
}

}  // namespace
}  // namespace segwan::controller
