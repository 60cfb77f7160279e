#include "edge-os/store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>

#include "segwan/log.h"

namespace segwan::controller {

using nlohmann::json;

namespace {

// Schema migrations, applied in order; migration N brings the schema to version N. Never edit
// one that has shipped: add the next.
const char* const kMigrations[] = {
    // 1: objects as JSON rows, samples and interval aggregates by session and time
    R"sql(
      CREATE TABLE sequences (name TEXT PRIMARY KEY, next INTEGER NOT NULL);
      CREATE TABLE tenants (id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE,
                            doc TEXT NOT NULL);
      CREATE TABLE devices (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
      CREATE TABLE slices (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, doc TEXT NOT NULL);
      CREATE TABLE delay_sessions (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,
                                   doc TEXT NOT NULL, counters TEXT NOT NULL DEFAULT '{}');
      CREATE TABLE samples (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
                            reflector_seq INTEGER NOT NULL, t1 INTEGER NOT NULL,
                            t2 INTEGER NOT NULL, t3 INTEGER NOT NULL, t4 INTEGER NOT NULL,
                            ttl INTEGER NOT NULL);
      CREATE INDEX samples_by_session_t1 ON samples (session_id, t1);
      CREATE TABLE aggregates (session_id TEXT NOT NULL, start_ms INTEGER NOT NULL,
                               length_ms INTEGER NOT NULL, doc TEXT NOT NULL,
                               PRIMARY KEY (session_id, start_ms));
    )sql",
    // 2: loss monitoring (alternate marking): sessions with their accounting cursor, periods
    R"sql(
      CREATE TABLE loss_sessions (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, doc TEXT NOT NULL,
                                  cursor TEXT NOT NULL DEFAULT '{}');
      CREATE TABLE loss_periods (session_id TEXT NOT NULL, idx INTEGER NOT NULL,
                                 end_ms INTEGER NOT NULL, doc TEXT NOT NULL,
                                 PRIMARY KEY (session_id, idx));
    )sql",
    // 3: enrolment of devices with the controller's CA: join tokens and issued certificates
    R"sql(
      CREATE TABLE enrolments (device_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
    )sql",
    // 4: notification mode: per device, the result log and the last cursor stored from it
    R"sql(
      CREATE TABLE result_cursors (device_id TEXT PRIMARY KEY, log_id INTEGER NOT NULL,
                                   cursor INTEGER NOT NULL);
    )sql",
    // 5: samples clustered by session and time (one B-tree instead of a table and an index:
    // an insert writes half the pages)
    R"sql(
      CREATE TABLE samples_by_time (session_id TEXT NOT NULL, t1 INTEGER NOT NULL, seq INTEGER NOT NULL,
                                    reflector_seq INTEGER NOT NULL, t2 INTEGER NOT NULL,
                                    t3 INTEGER NOT NULL, t4 INTEGER NOT NULL, ttl INTEGER NOT NULL,
                                    PRIMARY KEY (session_id, t1, seq)) WITHOUT ROWID;
      INSERT OR IGNORE INTO samples_by_time SELECT session_id, t1, seq, reflector_seq, t2, t3, t4, ttl FROM samples;
      DROP TABLE samples;
      ALTER TABLE samples_by_time RENAME TO samples;
    )sql",
    // 6: SLA steering: classes, policies, the candidate each steered direction uses, events
    R"sql(
      CREATE TABLE sla_classes (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, doc TEXT NOT NULL);
      CREATE TABLE steering_policies (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,
                                      slice_id TEXT NOT NULL, doc TEXT NOT NULL);
      CREATE TABLE steering_choices (policy_id TEXT NOT NULL, from_device TEXT NOT NULL,
                                     to_device TEXT NOT NULL, doc TEXT NOT NULL,
                                     PRIMARY KEY (policy_id, from_device, to_device));
      CREATE TABLE steering_events (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL,
                                    slice_id TEXT NOT NULL, time_ms INTEGER NOT NULL, doc TEXT NOT NULL);
      CREATE INDEX steering_events_by_tenant ON steering_events (tenant_id, id);
    )sql",
    // 7: where each tenant's alerts go
    R"sql(
      CREATE TABLE webhooks (tenant_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
    )sql",
    // 8: a session's counters in a narrow table of their own: every flush rewrites them for
    // every session with samples, and rewriting the session's whole document row made that a
    // quarter of the cost of storing samples at 5,000 sessions
    R"sql(
      CREATE TABLE session_counters (session_id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO session_counters SELECT id, counters FROM delay_sessions WHERE counters != '{}';
      ALTER TABLE delay_sessions DROP COLUMN counters;
    )sql",
    // 9: what a reply said beyond its timestamps (StampResult.flags), such as a reflector
    // whose clock is not synchronised
    R"sql(
      ALTER TABLE samples ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
    )sql",
};

constexpr int kLatestVersion = static_cast<int>(std::size(kMigrations));

template <typename T>
std::vector<T> Docs(SQLite::Database& db, const char* sql) {
  std::vector<T> out;
  SQLite::Statement q(db, sql);
  while (q.executeStep()) out.push_back(json::parse(q.getColumn(0).getString()).get<T>());
  return out;
}

}  // namespace

int SqliteStore::LatestSchemaVersion() const { return kLatestVersion; }

Result<std::unique_ptr<Store>> SqliteStore::Open(const std::string& path, bool allow_empty) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) == 0 && !ec && !allow_empty) {
    return Error{path + " is empty (0 bytes) in a data folder that was in use: restore the store from a backup, "
                 "or remove the file to start with an empty one",
                 "--db", 0};
  }
  try {
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    auto db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE,
                                                 5000);
    // Damage shows here rather than in the middle of a request.
    std::string verdict;
    {  // the statement must be gone before the connection closes
      SQLite::Statement check(*db, "PRAGMA quick_check");
      while (check.executeStep()) {
        if (!verdict.empty()) verdict += "; ";
        verdict += check.getColumn(0).getString();
        if (verdict.size() > 300) break;
      }
    }
    if (verdict != "ok") {
      return Error{path + " is damaged (quick_check: " + verdict + "): restore it from a backup", "--db", 0};
    }
    // A file another application made: its tables are not ours to migrate.
    if (db->execAndGet("PRAGMA user_version").getInt() == 0 &&
        db->execAndGet("SELECT count(*) FROM sqlite_master WHERE type = 'table'").getInt() > 0) {
      return Error{path + " holds another application's tables, not a SegWAN store", "--db", 0};
    }
    db->exec("PRAGMA journal_mode = WAL");
    // WAL + NORMAL: a committed transaction survives the process being killed; only a power
    // cut can take the last ones.
    db->exec("PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA foreign_keys = ON");
    // Samples of every session land together in each flush, one leaf page of the samples
    // table per session: a page cache of 64 MiB (instead of 2) keeps 5,000 sessions' last
    // pages in memory rather than read again, and a WAL of up to 10,000 pages (instead of
    // 1,000) is checkpointed once per several flushes rather than once per flush. Measured
    // by bench_controller's store_write.
    db->exec("PRAGMA cache_size = -65536");
    db->exec("PRAGMA wal_autocheckpoint = 10000");
    std::unique_ptr<SqliteStore> s(new SqliteStore(std::move(db), path));
    s->Migrate();
    // Reads have a connection of their own: in WAL mode they see every committed transaction
    // and never wait for the writer, so a long flush of samples does not hold up REST.
    s->rd_ = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READONLY, 5000);
    s->rd_->exec("PRAGMA cache_size = -8192");
    return std::unique_ptr<Store>(std::move(s));
  } catch (const std::exception& e) {
    return Error{"cannot open the database " + path + ": " + e.what(), "--db", 0};
  }
}

SqliteStore::SqliteStore(std::unique_ptr<SQLite::Database> db, std::string path) : Store(std::move(path)), db_(std::move(db)) {}

SqliteStore::~SqliteStore() = default;


int SqliteStore::SchemaVersion() {
  std::lock_guard lock(mu_);
  return db_->execAndGet("PRAGMA user_version").getInt();
}

void SqliteStore::Migrate() {
  std::lock_guard lock(mu_);
  int version = db_->execAndGet("PRAGMA user_version").getInt();
  if (version > kLatestVersion) {
    throw std::runtime_error("schema version " + std::to_string(version) +
                             " is newer than this edge-os knows (" +
                             std::to_string(kLatestVersion) + ")");
  }
  while (version < kLatestVersion) {
    SQLite::Transaction tx(*db_);
    db_->exec(kMigrations[version]);
    ++version;
    db_->exec("PRAGMA user_version = " + std::to_string(version));
    tx.commit();
    SEGWAN_LOG(kInfo, "store") << "database schema migrated to version " << version;
  }
}

Result<uint64_t> SqliteStore::NextId(const std::string& sequence) {
  return Update<uint64_t>("NextId", [&]() -> uint64_t {
    SQLite::Transaction tx(*db_);
    SQLite::Statement up(*db_,
                         "INSERT INTO sequences (name, next) VALUES (?, 2) "
                         "ON CONFLICT (name) DO UPDATE SET next = next + 1 RETURNING next - 1");
    up.bind(1, sequence);
    up.executeStep();
    const auto v = static_cast<uint64_t>(up.getColumn(0).getInt64());
    up.reset();
    tx.commit();
    return v;
  });
}

Status SqliteStore::PutTenant(const Tenant& t) {
  return Write("PutTenant", [&] {
    SQLite::Statement q(*db_, "INSERT INTO tenants (id, token_sha256, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE "
                              "SET token_sha256 = excluded.token_sha256, doc = excluded.doc");
    q.bind(1, t.id);
    q.bind(2, t.token_sha256);
    q.bind(3, json(t).dump());
    q.exec();
  });
}

Result<std::vector<Tenant>> SqliteStore::Tenants() {
  return Read<std::vector<Tenant>>("Tenants", [&]() -> std::vector<Tenant> {
    return Docs<Tenant>(*rd_, "SELECT doc FROM tenants ORDER BY rowid");
  });
}

Status SqliteStore::PutDevice(const Device& d) {
  return Write("PutDevice", [&] {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO devices (id, doc) VALUES (?, ?)");
    q.bind(1, d.id);
    q.bind(2, json(d).dump());
    q.exec();
  });
}

Result<std::vector<Device>> SqliteStore::Devices() {
  return Read<std::vector<Device>>("Devices", [&]() -> std::vector<Device> {
    return Docs<Device>(*rd_, "SELECT doc FROM devices ORDER BY id");
  });
}

Status SqliteStore::DeleteDevice(const std::string& id) {
  return Write("DeleteDevice", [&] {
    SQLite::Transaction tx(*db_);
    for (const char* sql : {"DELETE FROM devices WHERE id = ?", "DELETE FROM result_cursors WHERE device_id = ?"}) {
      SQLite::Statement q(*db_, sql);
      q.bind(1, id);
      q.exec();
    }
    tx.commit();
  });
}

Status SqliteStore::PutEnrolment(const Enrolment& e) {
  return Write("PutEnrolment", [&] {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO enrolments (device_id, doc) VALUES (?, ?)");
    q.bind(1, e.device_id);
    q.bind(2, json(e).dump());
    q.exec();
  });
}

Result<std::vector<Enrolment>> SqliteStore::Enrolments() {
  return Read<std::vector<Enrolment>>("Enrolments", [&]() -> std::vector<Enrolment> {
    return Docs<Enrolment>(*rd_, "SELECT doc FROM enrolments ORDER BY device_id");
  });
}

Status SqliteStore::DeleteEnrolment(const std::string& device_id) {
  return Write("DeleteEnrolment", [&] {
    SQLite::Statement q(*db_, "DELETE FROM enrolments WHERE device_id = ?");
    q.bind(1, device_id);
    q.exec();
  });
}

Result<std::optional<Device>> SqliteStore::GetDevice(const std::string& id) {
  return Read<std::optional<Device>>("GetDevice", [&]() -> std::optional<Device> {
    SQLite::Statement q(*rd_, "SELECT doc FROM devices WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return std::nullopt;
    return json::parse(q.getColumn(0).getString()).get<Device>();
  });
}

Status SqliteStore::PutSlice(const Slice& s) {
  return Write("PutSlice", [&] {
    SQLite::Statement q(*db_, "INSERT INTO slices (id, tenant_id, doc) VALUES (?, ?, ?) "
                              "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc");
    q.bind(1, s.id);
    q.bind(2, s.tenant_id);
    q.bind(3, json(s).dump());
    q.exec();
  });
}

Result<std::vector<Slice>> SqliteStore::Slices() {
  return Read<std::vector<Slice>>("Slices", [&]() -> std::vector<Slice> {
    return Docs<Slice>(*rd_, "SELECT doc FROM slices ORDER BY rowid");
  });
}

Status SqliteStore::DeleteSlice(const std::string& id) {
  return Write("DeleteSlice", [&] {
    SQLite::Statement q(*db_, "DELETE FROM slices WHERE id = ?");
    q.bind(1, id);
    q.exec();
  });
}

Status SqliteStore::PutSession(const DelaySession& s) {
  return Write("PutSession", [&] {
    SQLite::Statement q(*db_,
                        "INSERT INTO delay_sessions (id, tenant_id, doc) VALUES (?, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc");
    q.bind(1, s.id);
    q.bind(2, s.tenant_id);
    q.bind(3, json(s).dump());
    q.exec();
  });
}

Result<std::vector<DelaySession>> SqliteStore::Sessions() {
  return Read<std::vector<DelaySession>>("Sessions", [&]() -> std::vector<DelaySession> {
    return Docs<DelaySession>(*rd_, "SELECT doc FROM delay_sessions ORDER BY rowid");
  });
}

Status SqliteStore::DeleteSession(const std::string& id) {
  return Write("DeleteSession", [&] {
    SQLite::Transaction tx(*db_);
    for (const char* sql : {"DELETE FROM samples WHERE session_id = ?",
                            "DELETE FROM aggregates WHERE session_id = ?",
                            "DELETE FROM session_counters WHERE session_id = ?",
                            "DELETE FROM delay_sessions WHERE id = ?"}) {
      SQLite::Statement q(*db_, sql);
      q.bind(1, id);
      q.exec();
    }
    tx.commit();
  });
}

Result<SessionCounters> SqliteStore::Counters(const std::string& session_id) {
  return Read<SessionCounters>("Counters", [&]() -> SessionCounters {
    SQLite::Statement q(*rd_, "SELECT doc FROM session_counters WHERE session_id = ?");
    q.bind(1, session_id);
    if (!q.executeStep()) return {};
    return json::parse(q.getColumn(0).getString()).get<SessionCounters>();
  });
}

Status SqliteStore::WriteBatches(const std::vector<SessionBatch>& batches, const std::vector<ResultCursor>& cursors) {
  return Write("WriteBatches", [&] {
    SQLite::Transaction tx(*db_);
    SQLite::Statement cur(*db_, "INSERT OR REPLACE INTO result_cursors (device_id, log_id, cursor) VALUES (?, ?, ?)");
    for (const auto& c : cursors) {
      cur.bind(1, c.device_id);
      cur.bind(2, static_cast<int64_t>(c.log_id));  // stored as its two's complement
      cur.bind(3, static_cast<int64_t>(c.cursor));
      cur.exec();
      cur.reset();
    }
    SQLite::Statement ins(*db_,
                          "INSERT OR IGNORE INTO samples (session_id, seq, reflector_seq, t1, t2, t3, t4, ttl, flags) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    SQLite::Statement agg(*db_,
                          "INSERT OR REPLACE INTO aggregates (session_id, start_ms, length_ms, doc) "
                          "VALUES (?, ?, ?, ?)");
    SQLite::Statement cnt(*db_, "INSERT INTO session_counters (session_id, doc) SELECT ?2, ?1 "
                          "WHERE EXISTS (SELECT 1 FROM delay_sessions WHERE id = ?2) "
                          "ON CONFLICT (session_id) DO UPDATE SET doc = excluded.doc");
    uint64_t n = 0;
    for (const auto& b : batches) {
      for (const auto& s : b.samples) {
        ins.bind(1, b.session_id);
        ins.bind(2, static_cast<int64_t>(s.seq));
        ins.bind(3, static_cast<int64_t>(s.reflector_seq));
        ins.bind(4, static_cast<int64_t>(s.t1));
        ins.bind(5, static_cast<int64_t>(s.t2));
        ins.bind(6, static_cast<int64_t>(s.t3));
        ins.bind(7, static_cast<int64_t>(s.t4));
        ins.bind(8, static_cast<int64_t>(s.ttl));
        ins.bind(9, static_cast<int64_t>(s.flags));
        ins.exec();
        ins.reset();
        ++n;
      }
      for (const auto& a : b.closed) {
        agg.bind(1, b.session_id);
        agg.bind(2, a.start_ms);
        agg.bind(3, a.length_ms);
        agg.bind(4, AggregateToJson(a).dump());
        agg.exec();
        agg.reset();
      }
      cnt.bind(1, json(b.counters).dump());
      cnt.bind(2, b.session_id);
      cnt.exec();
      cnt.reset();
    }
    tx.commit();
    Stored(n);
  });
}

Result<std::vector<ResultCursor>> SqliteStore::ResultCursors() {
  return Read<std::vector<ResultCursor>>("ResultCursors", [&]() -> std::vector<ResultCursor> {
    SQLite::Statement q(*rd_, "SELECT device_id, log_id, cursor FROM result_cursors ORDER BY device_id");
    std::vector<ResultCursor> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getString(), static_cast<uint64_t>(q.getColumn(1).getInt64()),
                     static_cast<uint64_t>(q.getColumn(2).getInt64())});
    }
    return out;
  });
}

Result<std::vector<Sample>> SqliteStore::Samples(const std::string& session_id, uint64_t since_t1, size_t limit) {
  return Read<std::vector<Sample>>("Samples", [&]() -> std::vector<Sample> {
    SQLite::Statement q(*rd_,
                        "SELECT seq, reflector_seq, t1, t2, t3, t4, ttl, flags FROM samples "
                        "WHERE session_id = ? AND t1 >= ? ORDER BY t1, seq LIMIT ?");
    q.bind(1, session_id);
    q.bind(2, static_cast<int64_t>(since_t1));
    q.bind(3, static_cast<int64_t>(limit));
    std::vector<Sample> out;
    while (q.executeStep()) {
      Sample s;
      s.seq = static_cast<uint32_t>(q.getColumn(0).getInt64());
      s.reflector_seq = static_cast<uint32_t>(q.getColumn(1).getInt64());
      s.t1 = static_cast<uint64_t>(q.getColumn(2).getInt64());
      s.t2 = static_cast<uint64_t>(q.getColumn(3).getInt64());
      s.t3 = static_cast<uint64_t>(q.getColumn(4).getInt64());
      s.t4 = static_cast<uint64_t>(q.getColumn(5).getInt64());
      s.ttl = static_cast<uint32_t>(q.getColumn(6).getInt64());
      s.flags = static_cast<uint32_t>(q.getColumn(7).getInt64());
      out.push_back(s);
    }
    return out;
  });
}

Result<uint64_t> SqliteStore::SampleCount(const std::string& session_id) {
  return Read<uint64_t>("SampleCount", [&]() -> uint64_t {
    SQLite::Statement q(*rd_, "SELECT count(*) FROM samples WHERE session_id = ?");
    q.bind(1, session_id);
    q.executeStep();
    return static_cast<uint64_t>(q.getColumn(0).getInt64());
  });
}

Result<std::optional<int64_t>> SqliteStore::LastAggregateEnd(const std::string& session_id) {
  return Read<std::optional<int64_t>>("LastAggregateEnd", [&]() -> std::optional<int64_t> {
    SQLite::Statement q(*rd_,
                        "SELECT start_ms + length_ms FROM aggregates WHERE session_id = ? "
                        "ORDER BY start_ms DESC LIMIT 1");
    q.bind(1, session_id);
    if (!q.executeStep()) return std::nullopt;
    return q.getColumn(0).getInt64();
  });
}

Result<std::vector<IntervalAggregate>> SqliteStore::Aggregates(const std::string& session_id, int64_t since_ms,
                                                 size_t limit) {
  return Read<std::vector<IntervalAggregate>>("Aggregates", [&]() -> std::vector<IntervalAggregate> {
    SQLite::Statement q(*rd_,
                        "SELECT start_ms, length_ms, doc FROM aggregates "
                        "WHERE session_id = ? AND start_ms + length_ms > ? ORDER BY start_ms LIMIT ?");
    q.bind(1, session_id);
    q.bind(2, since_ms);
    q.bind(3, static_cast<int64_t>(limit));
    std::vector<IntervalAggregate> out;
    while (q.executeStep()) {
      out.push_back(AggregateFromJson(q.getColumn(0).getInt64(), q.getColumn(1).getInt64(),
                                      json::parse(q.getColumn(2).getString())));
    }
    return out;
  });
}

Status SqliteStore::PutLossSession(const LossSession& s) {
  return Write("PutLossSession", [&] {
    SQLite::Statement q(*db_,
                        "INSERT INTO loss_sessions (id, tenant_id, doc) VALUES (?, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc");
    q.bind(1, s.id);
    q.bind(2, s.tenant_id);
    q.bind(3, json(s).dump());
    q.exec();
  });
}

Result<std::vector<LossSession>> SqliteStore::LossSessions() {
  return Read<std::vector<LossSession>>("LossSessions", [&]() -> std::vector<LossSession> {
    return Docs<LossSession>(*rd_, "SELECT doc FROM loss_sessions ORDER BY rowid");
  });
}

Status SqliteStore::DeleteLossSession(const std::string& id) {
  return Write("DeleteLossSession", [&] {
    SQLite::Transaction tx(*db_);
    for (const char* sql : {"DELETE FROM loss_periods WHERE session_id = ?", "DELETE FROM loss_sessions WHERE id = ?"}) {
      SQLite::Statement q(*db_, sql);
      q.bind(1, id);
      q.exec();
    }
    tx.commit();
  });
}

Result<LossCursor> SqliteStore::GetLossCursor(const std::string& id) {
  return Read<LossCursor>("GetLossCursor", [&]() -> LossCursor {
    SQLite::Statement q(*rd_, "SELECT cursor FROM loss_sessions WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return {};
    return json::parse(q.getColumn(0).getString()).get<LossCursor>();
  });
}

Status SqliteStore::WriteLossPeriod(const std::string& id, const std::optional<LossPeriod>& period, const LossCursor& cursor) {
  return Write("WriteLossPeriod", [&] {
    SQLite::Transaction tx(*db_);
    if (period) {
      SQLite::Statement q(*db_, "INSERT OR REPLACE INTO loss_periods (session_id, idx, end_ms, doc) VALUES (?, ?, ?, ?)");
      q.bind(1, id);
      q.bind(2, static_cast<int64_t>(period->index));
      q.bind(3, period->end_ms);
      q.bind(4, json(*period).dump());
      q.exec();
    }
    SQLite::Statement c(*db_, "UPDATE loss_sessions SET cursor = ? WHERE id = ?");
    c.bind(1, json(cursor).dump());
    c.bind(2, id);
    c.exec();
    tx.commit();
  });
}

Result<std::optional<LossPeriod>> SqliteStore::LastLossPeriod(const std::string& id) {
  return Read<std::optional<LossPeriod>>("LastLossPeriod", [&]() -> std::optional<LossPeriod> {
    SQLite::Statement q(*rd_, "SELECT doc FROM loss_periods WHERE session_id = ? ORDER BY idx DESC LIMIT 1");
    q.bind(1, id);
    if (!q.executeStep()) return std::nullopt;
    return json::parse(q.getColumn(0).getString()).get<LossPeriod>();
  });
}

Result<std::vector<LossPeriod>> SqliteStore::LossPeriods(const std::string& id, int64_t since_ms, size_t limit) {
  return Read<std::vector<LossPeriod>>("LossPeriods", [&]() -> std::vector<LossPeriod> {
    SQLite::Statement q(*rd_,
                        "SELECT doc FROM loss_periods WHERE session_id = ? AND end_ms > ? ORDER BY idx LIMIT ?");
    q.bind(1, id);
    q.bind(2, since_ms);
    q.bind(3, static_cast<int64_t>(limit));
    std::vector<LossPeriod> out;
    while (q.executeStep()) out.push_back(json::parse(q.getColumn(0).getString()).get<LossPeriod>());
    return out;
  });
}

Result<uint64_t> SqliteStore::Prune(uint64_t samples_before_t1, int64_t aggregates_before_ms) {
  return Update<uint64_t>("Prune", [&]() -> uint64_t {
    SQLite::Transaction tx(*db_);
    SQLite::Statement a(*db_, "DELETE FROM samples WHERE t1 < ?");
    a.bind(1, static_cast<int64_t>(samples_before_t1));
    uint64_t n = static_cast<uint64_t>(a.exec());
    for (const char* sql : {"DELETE FROM aggregates WHERE start_ms < ?", "DELETE FROM loss_periods WHERE end_ms < ?",
                            "DELETE FROM steering_events WHERE time_ms < ?"}) {
      SQLite::Statement b(*db_, sql);
      b.bind(1, aggregates_before_ms);
      n += static_cast<uint64_t>(b.exec());
    }
    tx.commit();
    return n;
  });
}

// ---- SLA steering
namespace {

void InsertChoice(SQLite::Database& db, const SteeringChoice& c) {
  SQLite::Statement w(db, "INSERT OR REPLACE INTO steering_choices (policy_id, from_device, to_device, doc) VALUES (?, ?, ?, ?)");
  w.bind(1, c.policy_id);
  w.bind(2, c.from);
  w.bind(3, c.to);
  w.bind(4, json(c).dump());
  w.exec();
}

void InsertEvents(SQLite::Database& db, const std::vector<SteeringEvent>& events) {
  for (const auto& e : events) {
    SQLite::Statement q(db, "INSERT INTO steering_events (tenant_id, slice_id, time_ms, doc) VALUES (?, ?, ?, ?)");
    q.bind(1, e.tenant_id);
    q.bind(2, e.slice_id);
    q.bind(3, e.time_ms);
    q.bind(4, json(e).dump());
    q.exec();
  }
}

}  // namespace

Status SqliteStore::PutSla(const SlaClass& c) {
  return Write("PutSla", [&] {
    SQLite::Statement q(*db_, "INSERT INTO sla_classes (id, tenant_id, doc) VALUES (?, ?, ?) "
                              "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc");
    q.bind(1, c.id);
    q.bind(2, c.tenant_id);
    q.bind(3, json(c).dump());
    q.exec();
  });
}

Result<std::vector<SlaClass>> SqliteStore::Slas() {
  return Read<std::vector<SlaClass>>("Slas", [&] { return Docs<SlaClass>(*rd_, "SELECT doc FROM sla_classes ORDER BY rowid"); });
}

Status SqliteStore::DeleteSla(const std::string& id) {
  return Write("DeleteSla", [&] {
    SQLite::Statement q(*db_, "DELETE FROM sla_classes WHERE id = ?");
    q.bind(1, id);
    q.exec();
  });
}

Status SqliteStore::PutPolicy(const SteeringPolicy& p, const std::vector<SteeringChoice>& choices) {
  return Write("PutPolicy", [&] {
    SQLite::Transaction tx(*db_);
    SQLite::Statement q(*db_, "INSERT INTO steering_policies (id, tenant_id, slice_id, doc) VALUES (?, ?, ?, ?) "
                              "ON CONFLICT (id) DO UPDATE SET slice_id = excluded.slice_id, doc = excluded.doc");
    q.bind(1, p.id);
    q.bind(2, p.tenant_id);
    q.bind(3, p.slice_id);
    q.bind(4, json(p).dump());
    q.exec();
    for (const auto& c : choices) InsertChoice(*db_, c);
    tx.commit();
  });
}

Result<std::vector<SteeringPolicy>> SqliteStore::Policies() {
  return Read<std::vector<SteeringPolicy>>("Policies", [&] {
    return Docs<SteeringPolicy>(*rd_, "SELECT doc FROM steering_policies ORDER BY rowid");
  });
}

Status SqliteStore::DeletePolicy(const std::string& id) {
  return Write("DeletePolicy", [&] {
    SQLite::Transaction tx(*db_);
    for (const char* sql : {"DELETE FROM steering_policies WHERE id = ?", "DELETE FROM steering_choices WHERE policy_id = ?"}) {
      SQLite::Statement q(*db_, sql);
      q.bind(1, id);
      q.exec();
    }
    tx.commit();
  });
}

Status SqliteStore::PutChoice(const SteeringChoice& c, const std::vector<SteeringEvent>& events) {
  return Write("PutChoice", [&] {
    SQLite::Transaction tx(*db_);
    InsertChoice(*db_, c);
    InsertEvents(*db_, events);
    tx.commit();
  });
}

Result<std::vector<SteeringChoice>> SqliteStore::Choices() {
  return Read<std::vector<SteeringChoice>>("Choices", [&] {
    return Docs<SteeringChoice>(*rd_, "SELECT doc FROM steering_choices ORDER BY policy_id, from_device, to_device");
  });
}

Status SqliteStore::AddEvents(const std::vector<SteeringEvent>& events) {
  return Write("AddEvents", [&] {
    SQLite::Transaction tx(*db_);
    InsertEvents(*db_, events);
    tx.commit();
  });
}

Result<std::vector<SteeringEvent>> SqliteStore::Events(const std::string& tenant, const std::string& slice, int64_t before_id,
                                                size_t limit) {
  return Read<std::vector<SteeringEvent>>("Events", [&]() -> std::vector<SteeringEvent> {
    SQLite::Statement q(*rd_,
                        "SELECT id, doc FROM steering_events WHERE (?1 = '' OR tenant_id = ?1) AND (?2 = '' OR slice_id = ?2) "
                        "AND (?3 = 0 OR id < ?3) ORDER BY id DESC LIMIT ?4");
    q.bind(1, tenant);
    q.bind(2, slice);
    q.bind(3, before_id);
    q.bind(4, static_cast<int64_t>(limit));
    std::vector<SteeringEvent> out;
    while (q.executeStep()) {
      auto e = json::parse(q.getColumn(1).getString()).get<SteeringEvent>();
      e.id = q.getColumn(0).getInt64();
      out.push_back(std::move(e));
    }
    return out;
  });
}

Status SqliteStore::PutWebhook(const Webhook& w) {
  return Write("PutWebhook", [&] {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO webhooks (tenant_id, doc) VALUES (?, ?)");
    q.bind(1, w.tenant_id);
    q.bind(2, json(w).dump());
    q.exec();
  });
}

Result<std::vector<Webhook>> SqliteStore::Webhooks() {
  return Read<std::vector<Webhook>>("Webhooks", [&] { return Docs<Webhook>(*rd_, "SELECT doc FROM webhooks ORDER BY tenant_id"); });
}

Status SqliteStore::DeleteWebhook(const std::string& tenant_id) {
  return Write("DeleteWebhook", [&] {
    SQLite::Statement q(*db_, "DELETE FROM webhooks WHERE tenant_id = ?");
    q.bind(1, tenant_id);
    q.exec();
  });
}

}  // namespace segwan::controller
