// The store's one test suite, run on both engines: a real SQLite file and a real PostgreSQL
// (Debian's server in a private cluster; the PostgreSQL half skips, saying why, where it cannot
// start). Then what only one engine has: SQLite's file format and migrations from old
// versions, PostgreSQL's day partitions, foreign databases and a server that goes away.
#include "edge-os/store/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "edge-os/store/postgres_store.h"
#include "test_store.h"

namespace segwan::controller {
namespace {

Sample S(uint32_t seq, uint64_t t1) { return {seq, seq, t1, t1 + 5'000'000, t1 + 5'010'000, t1 + 9'000'000, 63}; }

std::filesystem::path TestDir() {
  return std::filesystem::temp_directory_path() /
         ("segwan-store-" + std::to_string(getpid()) + "-" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

// Where a test's store lives: a fresh file, or a fresh database in the shared cluster.
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    std::filesystem::remove_all(dir_);
    if (GetParam() == "sqlite") {
      where_ = (dir_ / "sub" / "segwan.db").string();
      return;
    }
    std::string why;
    auto uri = segwan::testing::FreshPostgresDatabase(&why);
    if (!uri) GTEST_SKIP() << "no PostgreSQL to test with: " << why;
    where_ = *uri;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<Store> Open() {
    auto s = Store::Open(where_);
    EXPECT_TRUE(s) << (s ? "" : s.error().ToString());
    if (s) {
      EXPECT_EQ((*s)->Engine(), GetParam());
    }
    return s ? std::move(*s) : nullptr;
  }
  std::filesystem::path dir_;
  std::string where_;
};

INSTANTIATE_TEST_SUITE_P(Engines, StoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreTest, EverythingSurvivesAReopen) {
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

TEST_P(StoreTest, DeletingASessionTakesItsSamplesAndAggregates) {
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

TEST_P(StoreTest, PruneRemovesOnlyWhatIsOlder) {
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

TEST_P(StoreTest, CountersGoWithTheirSessionAndDoNotComeBack) {
  auto s = Open();
  DelaySession ds;
  ds.id = "ds1";
  ASSERT_TRUE(s->PutSession(ds));
  SessionBatch b;
  b.session_id = "ds1";
  b.samples = {S(42, 1000)};
  b.samples[0].flags = Sample::kUnsynchronized;
  b.counters.received = 43;
  ASSERT_TRUE(s->WriteBatches({b}));
  EXPECT_EQ(s->Counters("ds1")->received, 43u);
  EXPECT_EQ(s->Samples("ds1", 0, 10)->at(0).flags, Sample::kUnsynchronized);
  ASSERT_TRUE(s->DeleteSession("ds1"));
  EXPECT_EQ(s->Counters("ds1")->received, 0u);
  // A batch that was on its way when the session went does not bring its counters back.
  b.counters.received = 44;
  ASSERT_TRUE(s->WriteBatches({b}));
  EXPECT_EQ(s->Counters("ds1")->received, 0u);
}

TEST_P(StoreTest, ListsComeBackInCreationOrderAndKeysInByteOrder) {
  auto s = Open();
  for (const char* id : {"t2", "t10", "t1"}) ASSERT_TRUE(s->PutTenant({id, id, std::string("hash-") + id, 0}));
  ASSERT_TRUE(s->PutTenant({"t2", "renamed", "hash-t2b", 0}));  // an update keeps its place
  auto tenants = *s->Tenants();
  ASSERT_EQ(tenants.size(), 3u);
  EXPECT_EQ(tenants[0].id, "t2");
  EXPECT_EQ(tenants[0].name, "renamed");
  EXPECT_EQ(tenants[0].token_sha256, "hash-t2b");
  EXPECT_EQ(tenants[1].id, "t10");
  EXPECT_EQ(tenants[2].id, "t1");
  for (const char* id : {"sl9", "sl1"}) {
    Slice sl;
    sl.id = id;
    sl.tenant_id = "t1";
    ASSERT_TRUE(s->PutSlice(sl));
    DelaySession d;
    d.id = std::string("ds-") + id;
    ASSERT_TRUE(s->PutSession(d));
    LossSession l;
    l.id = std::string("ls-") + id;
    ASSERT_TRUE(s->PutLossSession(l));
    SlaClass c;
    c.id = std::string("sla-") + id;
    ASSERT_TRUE(s->PutSla(c));
  }
  Slice again;
  again.id = "sl9";
  again.number = 7;
  ASSERT_TRUE(s->PutSlice(again));
  EXPECT_EQ(s->Slices()->at(0).id, "sl9");
  EXPECT_EQ(s->Slices()->at(0).number, 7u);
  EXPECT_EQ(s->Sessions()->at(0).id, "ds-sl9");
  EXPECT_EQ(s->LossSessions()->at(0).id, "ls-sl9");
  EXPECT_EQ(s->Slas()->at(0).id, "sla-sl9");
  // Devices, enrolments and webhooks by key, byte by byte (capitals first).
  for (const char* id : {"edge-b", "edge-a", "Edge-z"}) {
    Device d;
    d.id = id;
    ASSERT_TRUE(s->PutDevice(d));
    Enrolment e;
    e.device_id = id;
    ASSERT_TRUE(s->PutEnrolment(e));
    ASSERT_TRUE(s->PutWebhook({id, "https://example.net/" + std::string(id), 1}));
  }
  std::vector<std::string> ids, enrolled, hooks;
  const auto devices = *s->Devices();
  const auto enrolments = *s->Enrolments();
  const auto webhooks = *s->Webhooks();
  for (const auto& d : devices) ids.push_back(d.id);
  for (const auto& e : enrolments) enrolled.push_back(e.device_id);
  for (const auto& w : webhooks) hooks.push_back(w.tenant_id);
  const std::vector<std::string> sorted{"Edge-z", "edge-a", "edge-b"};
  EXPECT_EQ(ids, sorted);
  EXPECT_EQ(enrolled, sorted);
  EXPECT_EQ(hooks, sorted);
  ASSERT_TRUE(s->DeleteEnrolment("edge-a"));
  ASSERT_TRUE(s->DeleteWebhook("edge-b"));
  ASSERT_TRUE(s->PutWebhook({"Edge-z", "https://example.net/new", 2}));
  EXPECT_EQ(s->Enrolments()->size(), 2u);
  EXPECT_EQ(s->Webhooks()->size(), 2u);
  EXPECT_EQ(s->Webhooks()->at(0).url, "https://example.net/new");
}

TEST_P(StoreTest, SequencesCountOnTheirOwn) {
  auto s = Open();
  EXPECT_EQ(*s->NextId("tenant"), 1u);
  EXPECT_EQ(*s->NextId("tenant"), 2u);
  EXPECT_EQ(*s->NextId("slice"), 1u);
  EXPECT_EQ(*s->NextId("tenant"), 3u);
}

TEST_P(StoreTest, ASampleStoredTwiceKeepsItsFirstValuesAndTheLastCountersWin) {
  auto s = Open();
  DelaySession ds;
  ds.id = "ds1";
  ASSERT_TRUE(s->PutSession(ds));
  SessionBatch first;
  first.session_id = "ds1";
  first.samples = {S(1, 1'000'000), S(2, 2'000'000)};
  first.counters.received = 2;
  first.closed.push_back(IntervalAggregate{.start_ms = 0, .length_ms = 1000, .sent = 2});
  SessionBatch second = first;  // the same session twice in one call (a replay and a new poll)
  second.samples = {S(2, 2'000'000), S(3, 3'000'000)};
  second.samples[0].t2 += 777;  // a replayed record that differs is not taken
  second.counters.received = 3;
  second.closed[0].sent = 3;
  ASSERT_TRUE(s->WriteBatches({first, second}));
  EXPECT_EQ(s->SamplesStored(), 4u) << "counts what it was given";
  EXPECT_EQ(*s->SampleCount("ds1"), 3u);
  EXPECT_EQ(s->Samples("ds1", 2'000'000, 1)->at(0).t2, 2'000'000u + 5'000'000u);
  EXPECT_EQ(s->Counters("ds1")->received, 3u);
  ASSERT_EQ(s->Aggregates("ds1", 0, 10)->size(), 1u);
  EXPECT_EQ(s->Aggregates("ds1", 0, 10)->at(0).sent, 3u);
  ASSERT_TRUE(s->WriteBatches({first}));  // again, alone: nothing new
  EXPECT_EQ(*s->SampleCount("ds1"), 3u);
}

TEST_P(StoreTest, ResultCursorsKeepAll64BitsAndGoWithTheirDevice) {
  auto s = Open();
  Device d;
  d.id = "edge-a";
  ASSERT_TRUE(s->PutDevice(d));
  const uint64_t log = 0xfedcba9876543210ULL;  // a random log id: above 2^63
  ASSERT_TRUE(s->WriteBatches({}, {{"edge-a", log, 5}, {"edge-b", 1, 7}}));
  ASSERT_TRUE(s->WriteBatches({}, {{"edge-a", log, 9}}));
  auto c = *s->ResultCursors();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].device_id, "edge-a");
  EXPECT_EQ(c[0].log_id, log);
  EXPECT_EQ(c[0].cursor, 9u);
  EXPECT_EQ(c[1].cursor, 7u);
  ASSERT_TRUE(s->DeleteDevice("edge-a"));
  EXPECT_FALSE(*s->GetDevice("edge-a"));
  ASSERT_EQ(s->ResultCursors()->size(), 1u);
  EXPECT_EQ(s->ResultCursors()->at(0).device_id, "edge-b");
}

TEST_P(StoreTest, LossPeriodsAndCursorMoveTogetherAndGoWithTheSession) {
  auto s = Open();
  LossSession l;
  l.id = "ls1";
  l.tenant_id = "t1";
  ASSERT_TRUE(s->PutLossSession(l));
  EXPECT_EQ(s->GetLossCursor("ls1")->next_index, -1) << "no cursor yet";
  EXPECT_FALSE(*s->LastLossPeriod("ls1"));
  for (uint64_t i = 0; i < 3; ++i) {
    LossPeriod p;
    p.index = i;
    p.end_ms = 1000 * static_cast<int64_t>(i + 1);
    p.sent = 100;
    p.received = 100 - i;
    LossCursor c;
    c.period_index = i;
    c.next_index = static_cast<int64_t>(i + 1);
    c.tx = {i, i + 1};
    ASSERT_TRUE(s->WriteLossPeriod("ls1", p, c));
  }
  LossCursor only;
  only.next_index = 3;
  only.period_index = 9;
  ASSERT_TRUE(s->WriteLossPeriod("ls1", std::nullopt, only));  // a cursor without a period
  EXPECT_EQ(s->GetLossCursor("ls1")->period_index, 9u);
  EXPECT_EQ(s->LastLossPeriod("ls1")->value().index, 2u);
  EXPECT_EQ(s->LastLossPeriod("ls1")->value().received, 98u);
  auto since = *s->LossPeriods("ls1", 1000, 10);  // ends after 1000: the 2nd and 3rd
  ASSERT_EQ(since.size(), 2u);
  EXPECT_EQ(since[0].index, 1u);
  EXPECT_EQ(s->LossPeriods("ls1", 0, 1)->size(), 1u);
  ASSERT_TRUE(s->DeleteLossSession("ls1"));
  EXPECT_TRUE(s->LossSessions()->empty());
  EXPECT_TRUE(s->LossPeriods("ls1", 0, 10)->empty());
  EXPECT_FALSE(*s->LastLossPeriod("ls1"));
}

TEST_P(StoreTest, SteeringPoliciesChoicesAndEventsPageNewestFirst) {
  auto s = Open();
  SlaClass c;
  c.id = "sla1";
  c.tenant_id = "t1";
  c.limits.delay_ms = 20;
  ASSERT_TRUE(s->PutSla(c));
  EXPECT_EQ(s->Slas()->at(0).limits.delay_ms, 20);
  SteeringPolicy p;
  p.id = "st1";
  p.tenant_id = "t1";
  p.slice_id = "sl1";
  p.sla_id = "sla1";
  ASSERT_TRUE(s->PutPolicy(p, {{"st1", "edge-b", "edge-a", "direct", 1}, {"st1", "edge-a", "edge-b", "direct", 1}}));
  auto choices = *s->Choices();
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[0].from, "edge-a");  // by policy, from, to
  SteeringEvent e;
  e.tenant_id = "t1";
  e.slice_id = "sl1";
  e.kind = "switch";
  e.time_ms = 100;
  ASSERT_TRUE(s->PutChoice({"st1", "edge-a", "edge-b", "p1", 100}, {e}));
  EXPECT_EQ(s->Choices()->at(0).active, "p1");
  EXPECT_EQ(s->Choices()->size(), 2u);
  std::vector<SteeringEvent> more;
  for (int i = 0; i < 5; ++i) {
    e.time_ms = 200 + i;
    e.slice_id = i % 2 ? "sl2" : "sl1";
    e.tenant_id = i == 4 ? "t2" : "t1";
    more.push_back(e);
  }
  ASSERT_TRUE(s->AddEvents(more));
  auto all = *s->Events("", "", 0, 100);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[0].time_ms, 204);  // newest first
  EXPECT_GT(all[0].id, all[1].id);
  auto page1 = *s->Events("t1", "", 0, 2);
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_EQ(page1[0].time_ms, 203);
  auto page2 = *s->Events("t1", "", page1[1].id, 10);
  ASSERT_EQ(page2.size(), 3u);
  EXPECT_EQ(page2.back().time_ms, 100);
  EXPECT_EQ(s->Events("t1", "sl2", 0, 10)->size(), 2u);
  ASSERT_TRUE(s->DeletePolicy("st1"));
  EXPECT_TRUE(s->Policies()->empty());
  EXPECT_TRUE(s->Choices()->empty());
  ASSERT_TRUE(s->DeleteSla("sla1"));
  EXPECT_TRUE(s->Slas()->empty());
  // Retention takes events, loss periods and aggregates older than the cut-off with the samples.
  LossSession l;
  l.id = "ls1";
  ASSERT_TRUE(s->PutLossSession(l));
  ASSERT_TRUE(s->WriteLossPeriod("ls1", LossPeriod{.index = 0, .end_ms = 150}, {}));
  ASSERT_TRUE(s->WriteLossPeriod("ls1", LossPeriod{.index = 1, .end_ms = 250}, {}));
  EXPECT_EQ(*s->Prune(0, 202), 3u + 1u);  // events at 100, 200, 201; the period ending at 150
  EXPECT_EQ(s->Events("", "", 0, 100)->size(), 3u);
  EXPECT_EQ(s->LossPeriods("ls1", 0, 10)->size(), 1u);
}
// ---- SQLite only: the file, and migrations from versions that shipped

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir();
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

TEST_F(SqliteStoreTest, NewFileIsMigratedToTheLatestSchemaInWalMode) {
  auto s = Open();
  EXPECT_EQ(s->SchemaVersion(), s->LatestSchemaVersion());
  s.reset();
  SQLite::Database db(path_);
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_TRUE(db.tableExists("samples"));
  EXPECT_TRUE(db.tableExists("aggregates"));
}

TEST_F(SqliteStoreTest, AFileFromANewerVersionIsRefused) {
  Open().reset();
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version = 999");
  }
  auto s = Store::Open(path_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
}

TEST_F(SqliteStoreTest, CountersMoveOutOfTheSessionRowAndGoWithTheSession) {
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
  EXPECT_EQ(s->SchemaVersion(), s->LatestSchemaVersion());
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

// ---- PostgreSQL only: day partitions, what is not ours, a server that goes away

constexpr uint64_t kDay = 86'400'000'000'000ULL;  // ns

// The first value of the first row, or "error: ..." (a plain libpq session, not the store's).
std::string Query(const std::string& uri, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(uri.c_str()), PQfinish);
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), PQclear);
  const auto st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return std::string("error: ") + PQerrorMessage(c.get());
  return st == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
}

class PostgresStoreTest : public testing::FreshDatabaseTest {
 protected:
  std::string Partitions() {
    return Query(uri_, "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i "
                       "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'samples'::regclass");
  }
};

TEST_F(PostgresStoreTest, SamplesLiveInDayPartitionsAndRetentionDropsWholeDays) {
  EXPECT_EQ(PostgresStore::PartitionName(0), "samples_19700101");
  EXPECT_EQ(PostgresStore::PartitionName(20'790), "samples_20261203");
  auto s = std::move(*Store::Open(uri_));
  DelaySession ds;
  ds.id = "ds1";
  ASSERT_TRUE(s->PutSession(ds));
  SessionBatch b;
  b.session_id = "ds1";
  b.samples = {S(0, 1000), S(1, 2000), S(2, kDay + 5), S(3, kDay + 50), S(4, 2 * kDay + 7)};
  ASSERT_TRUE(s->WriteBatches({b}));
  EXPECT_EQ(Partitions(), "samples_19700101,samples_19700102,samples_19700103");
  EXPECT_EQ(Query(uri_, "SELECT count(*) FROM samples_19700102"), "2");
  // Before kDay + 10: day 1 goes whole (two rows), day 2 loses one row.
  EXPECT_EQ(*s->Prune(kDay + 10, 0), 3u);
  EXPECT_EQ(Partitions(), "samples_19700102,samples_19700103");
  EXPECT_EQ(*s->SampleCount("ds1"), 2u);
  EXPECT_EQ(s->Samples("ds1", 0, 10)->at(0).seq, 3u);
  // A late sample of the dropped day makes its partition again.
  b.samples = {S(9, 3000)};
  ASSERT_TRUE(s->WriteBatches({b}));
  EXPECT_EQ(Partitions(), "samples_19700101,samples_19700102,samples_19700103");
  EXPECT_EQ(*s->SampleCount("ds1"), 3u);
}

TEST_F(PostgresStoreTest, ADatabaseOfAnotherApplicationIsRefused) {
  ASSERT_EQ(Query(uri_, "CREATE TABLE songs (title text)"), "");
  auto s = Store::Open(uri_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("another application"), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().field, "--store");
  EXPECT_EQ(Query(uri_, "SELECT to_regclass('segwan_schema')"), "") << "nothing was created";
}

TEST_F(PostgresStoreTest, ANewerSchemaIsRefusedAndAPasswordIsNeverShown) {
  { ASSERT_TRUE(Store::Open(uri_)); }
  ASSERT_EQ(Query(uri_, "UPDATE segwan_schema SET version = 999"), "");
  auto s = Store::Open(uri_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
  auto wrong = Store::Open("postgresql://segwan:hunter2@127.0.0.1:1/segwan");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message.find("hunter2"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("segwan:***@127.0.0.1"), std::string::npos) << wrong.error().message;
}

TEST_F(PostgresStoreTest, ControllersStartingTogetherMigrateOnce) {
  std::vector<std::thread> starts;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    starts.emplace_back([&] {
      auto s = Store::Open(uri_);
      if (s && (*s)->SchemaVersion() == (*s)->LatestSchemaVersion()) ++opened;
    });
  }
  for (auto& t : starts) t.join();
  EXPECT_EQ(opened, 4);
  EXPECT_EQ(Query(uri_, "SELECT count(*) FROM segwan_schema"), "1");
}

// A server of its own: this test stops it.
TEST(PostgresStoreFaults, ALostServerIs503UntilItIsBackThenTheStoreGoesOn) {
  std::string why;
  auto pg = segwan::testing::TestPostgres::Start(&why);
  if (!pg) GTEST_SKIP() << "no PostgreSQL to test with: " << why;
  auto s = std::move(*Store::Open(pg->Uri()));
  DelaySession ds;
  ds.id = "ds1";
  ASSERT_TRUE(s->PutSession(ds));
  SessionBatch b;
  b.session_id = "ds1";
  b.samples = {S(0, 1000)};
  ASSERT_TRUE(s->WriteBatches({b}));
  ASSERT_TRUE(pg->Kill());
  b.samples = {S(1, 2000)};
  auto w = s->WriteBatches({b});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, kStoreUnavailable);
  auto r = s->Sessions();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kStoreUnavailable);
  EXPECT_FALSE(s->SampleCount("ds1"));
  EXPECT_GE(s->Errors(), 3u);
  ASSERT_TRUE(pg->Restart());
  // Back within the second after the server is.
  Result<uint64_t> n = Error{};
  for (int i = 0; i < 30 && !n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    n = s->SampleCount("ds1");
  }
  ASSERT_TRUE(n) << "reconnected";
  EXPECT_EQ(*n, 1u);
  ASSERT_TRUE(s->WriteBatches({b})) << "reconnected, its temporary tables made again";
  EXPECT_EQ(*s->SampleCount("ds1"), 2u);
  EXPECT_EQ(s->Sessions()->size(), 1u);
}
}  // namespace
}  // namespace segwan::controller
