#include "edge-os/store/postgres_store.h"

#include <chrono>
#include <cstdio>
#include <string_view>
#include <unordered_map>

#include "edge-os/store/pg.h"
#include "segwan/log.h"

namespace segwan::controller {

using nlohmann::json;

namespace {

constexpr int64_t kDayNs = 86'400'000'000'000LL;
// Advisory lock keys (one namespace per database): schema migration, sample partitions.
constexpr const char* kMigrationLock = "7300001";
constexpr const char* kPartitionLock = "7300002";

// Schema migrations, applied in order; migration N brings the schema to version N. Never edit
// one that has shipped: add the next. The same tables as SQLite's version 9, with an `ord`
// column where lists come back in creation order and samples partitioned by day.
const char* const kMigrations[] = {
    // 1
    R"sql(
      CREATE TABLE sequences (name TEXT COLLATE "C" PRIMARY KEY, next BIGINT NOT NULL);
      CREATE TABLE tenants (ord BIGSERIAL, id TEXT COLLATE "C" PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE,
                            doc TEXT NOT NULL);
      CREATE TABLE devices (id TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL);
      CREATE TABLE enrolments (device_id TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL);
      CREATE TABLE slices (ord BIGSERIAL, id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT NOT NULL, doc TEXT NOT NULL);
      CREATE TABLE delay_sessions (ord BIGSERIAL, id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT NOT NULL,
                                   doc TEXT NOT NULL);
      CREATE TABLE session_counters (session_id TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL)
        WITH (fillfactor = 50);  -- rewritten at every flush: room on the page for HOT updates
      CREATE TABLE samples (session_id TEXT COLLATE "C" NOT NULL, t1 BIGINT NOT NULL, seq BIGINT NOT NULL,
                            reflector_seq BIGINT NOT NULL, t2 BIGINT NOT NULL, t3 BIGINT NOT NULL,
                            t4 BIGINT NOT NULL, ttl INTEGER NOT NULL, flags INTEGER NOT NULL DEFAULT 0,
                            PRIMARY KEY (session_id, t1, seq)) PARTITION BY RANGE (t1);
      CREATE TABLE aggregates (session_id TEXT COLLATE "C" NOT NULL, start_ms BIGINT NOT NULL,
                               length_ms BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (session_id, start_ms));
      CREATE TABLE loss_sessions (ord BIGSERIAL, id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT NOT NULL,
                                  doc TEXT NOT NULL, cursor TEXT NOT NULL DEFAULT '{}');
      CREATE TABLE loss_periods (session_id TEXT COLLATE "C" NOT NULL, idx BIGINT NOT NULL, end_ms BIGINT NOT NULL,
                                 doc TEXT NOT NULL, PRIMARY KEY (session_id, idx));
      CREATE TABLE result_cursors (device_id TEXT COLLATE "C" PRIMARY KEY, log_id BIGINT NOT NULL,
                                   cursor BIGINT NOT NULL);
      CREATE TABLE sla_classes (ord BIGSERIAL, id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT NOT NULL,
                                doc TEXT NOT NULL);
      CREATE TABLE steering_policies (ord BIGSERIAL, id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT NOT NULL,
                                      slice_id TEXT NOT NULL, doc TEXT NOT NULL);
      CREATE TABLE steering_choices (policy_id TEXT COLLATE "C" NOT NULL, from_device TEXT COLLATE "C" NOT NULL,
                                     to_device TEXT COLLATE "C" NOT NULL, doc TEXT NOT NULL,
                                     PRIMARY KEY (policy_id, from_device, to_device));
      CREATE TABLE steering_events (id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, slice_id TEXT NOT NULL,
                                    time_ms BIGINT NOT NULL, doc TEXT NOT NULL);
      CREATE INDEX steering_events_by_tenant ON steering_events (tenant_id, id);
      CREATE TABLE webhooks (tenant_id TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL);
      -- who leads the controllers sharing this database (edge-os/ha/leader.h)
      CREATE TABLE segwan_leader (id TEXT NOT NULL, http TEXT NOT NULL, grpc TEXT NOT NULL, since_ms BIGINT NOT NULL);
    )sql",
    // 2: each new leader's epoch, greater than any before (a sequence never gives a number
    // twice); the edges refuse calls from an older one
    R"sql(
      CREATE SEQUENCE segwan_leader_epoch;
      ALTER TABLE segwan_leader ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
    )sql",
};

constexpr int kLatestVersion = static_cast<int>(std::size(kMigrations));

// What WriteBatches copies in, per session of the connection (emptied at each commit).
constexpr const char* kStagingTables = R"sql(
  CREATE TEMP TABLE samples_in (session_id TEXT, t1 BIGINT, seq BIGINT, reflector_seq BIGINT, t2 BIGINT,
                                t3 BIGINT, t4 BIGINT, ttl INTEGER, flags INTEGER) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE aggregates_in (n BIGSERIAL, session_id TEXT, start_ms BIGINT, length_ms BIGINT, doc TEXT)
    ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE counters_in (n BIGSERIAL, session_id TEXT, doc TEXT) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE cursors_in (n BIGSERIAL, device_id TEXT, log_id BIGINT, cursor BIGINT) ON COMMIT DELETE ROWS;
)sql";

std::string Int(int64_t v) { return std::to_string(v); }
std::string Int(uint64_t v) { return std::to_string(static_cast<int64_t>(v)); }  // two's complement, as SQLite

template <typename T>
std::vector<T> Docs(pg::Connection& c, const std::string& sql, const std::vector<pg::Param>& params = {}) {
  const auto rows = c.Exec(sql, params);
  std::vector<T> out;
  out.reserve(static_cast<size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) out.push_back(json::parse(rows.text(i, 0)).get<T>());
  return out;
}

void Tab(std::string& out, std::string_view v) {
  pg::AppendCopyText(out, v);
  out += '\t';
}
void Tab(std::string& out, int64_t v) {
  out += std::to_string(v);
  out += '\t';
}
void EndLine(std::string& out) { out.back() = '\n'; }

// Day of a partition's name (samples_YYYYMMDD), or nothing for a table that is not one.
std::optional<int64_t> DayOf(const std::string& name) {
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  if (name.size() != 16 || std::sscanf(name.c_str(), "samples_%4d%2u%2u%c", &y, &m, &d, &tail) != 3) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days(ymd).time_since_epoch().count();
}

}  // namespace

std::string PostgresStore::PartitionName(int64_t day) {
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
  char name[32];
  std::snprintf(name, sizeof name, "samples_%04d%02u%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return name;
}

Result<std::unique_ptr<Store>> PostgresStore::Open(const std::string& uri) {
  const std::string where = pg::Connection::Redacted(uri);
  std::string why;
  auto db = pg::Connection::Open(uri, "edge-os", &why);
  auto rd = db ? pg::Connection::Open(uri, "edge-os", &why) : nullptr;
  if (!db || !rd) return Error{"cannot connect to the database " + where + ": " + why, "--store", 0};
  std::unique_ptr<PostgresStore> s(new PostgresStore(std::move(db), std::move(rd), where));
  try {
    s->Migrate();
  } catch (const std::exception& e) {
    return Error{where + ": " + e.what(), "--store", 0};
  }
  return std::unique_ptr<Store>(std::move(s));
}

PostgresStore::PostgresStore(std::unique_ptr<pg::Connection> db, std::unique_ptr<pg::Connection> rd, std::string where)
    : Store(std::move(where)), db_(std::move(db)), rd_(std::move(rd)) {}

PostgresStore::~PostgresStore() = default;

void PostgresStore::Ready(bool writer) {
  auto& c = writer ? *db_ : *rd_;
  if (c.Ok()) return;
  if (writer) {  // a new session: its temporary tables are gone, and days may have been dropped meanwhile
    staging_ = false;
    days_.clear();
  }
  // One attempt a second at most: while the database is away, calls fail at once instead of
  // each waiting for a connect timeout.
  auto& retry_at = writer ? db_retry_at_ : rd_retry_at_;
  const auto now = std::chrono::steady_clock::now();
  if (now < retry_at) throw pg::Failure("the database cannot be reached: " + c.LastError(), "");
  if (!c.Reset()) {
    retry_at = now + std::chrono::seconds(1);
    throw pg::Failure("the database cannot be reached: " + c.LastError(), "");
  }
  SEGWAN_LOG(kInfo, "store") << "reconnected to " << Where();
}

void PostgresStore::Migrate() {
  std::lock_guard lock(mu_);
  pg::Transaction tx(*db_);
  db_->Exec(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")");
  int version = 0;
  if (db_->Exec("SELECT to_regclass('segwan_schema')").null(0, 0)) {
    // A database another application made: its tables are not ours to migrate.
    const auto tables = db_->Exec("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()");
    if (tables.int64(0, 0) > 0) throw std::runtime_error("holds another application's tables, not a SegWAN store");
    db_->Exec("CREATE TABLE segwan_schema (version INTEGER NOT NULL)");
    db_->Exec("INSERT INTO segwan_schema VALUES (0)");
  } else {
    version = static_cast<int>(db_->Exec("SELECT version FROM segwan_schema").int64(0, 0));
  }
  if (version > kLatestVersion) {
    throw std::runtime_error("schema version " + std::to_string(version) + " is newer than this edge-os knows (" +
                             std::to_string(kLatestVersion) + ")");
  }
  const int from = version;
  while (version < kLatestVersion) {
    db_->Exec(kMigrations[version]);
    ++version;
  }
  db_->Exec("UPDATE segwan_schema SET version = $1", {Int(static_cast<int64_t>(version))});
  tx.Commit();
  if (version != from) SEGWAN_LOG(kInfo, "store") << "database schema migrated to version " << version;
}

int PostgresStore::LatestSchemaVersion() const { return kLatestVersion; }

int PostgresStore::SchemaVersion() {
  auto v = Update<int>("SchemaVersion", [&] { return static_cast<int>(db_->Exec("SELECT version FROM segwan_schema").int64(0, 0)); });
  return v ? *v : -1;
}

Result<uint64_t> PostgresStore::NextId(const std::string& sequence) {
  return Update<uint64_t>("NextId", [&]() -> uint64_t {
    return static_cast<uint64_t>(db_->Exec("INSERT INTO sequences (name, next) VALUES ($1, 2) ON CONFLICT (name) "
                                           "DO UPDATE SET next = sequences.next + 1 RETURNING next - 1",
                                           {sequence})
                                     .int64(0, 0));
  });
}

Status PostgresStore::PutTenant(const Tenant& t) {
  return Write("PutTenant", [&] {
    db_->Exec("INSERT INTO tenants (id, token_sha256, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE "
              "SET token_sha256 = excluded.token_sha256, doc = excluded.doc",
              {t.id, t.token_sha256, json(t).dump()});
  });
}

Result<std::vector<Tenant>> PostgresStore::Tenants() {
  return Read<std::vector<Tenant>>("Tenants", [&] { return Docs<Tenant>(*rd_, "SELECT doc FROM tenants ORDER BY ord"); });
}

Status PostgresStore::PutDevice(const Device& d) {
  return Write("PutDevice", [&] {
    db_->Exec("INSERT INTO devices (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
              {d.id, json(d).dump()});
  });
}

Result<std::vector<Device>> PostgresStore::Devices() {
  return Read<std::vector<Device>>("Devices", [&] { return Docs<Device>(*rd_, "SELECT doc FROM devices ORDER BY id"); });
}

Result<std::optional<Device>> PostgresStore::GetDevice(const std::string& id) {
  return Read<std::optional<Device>>("GetDevice", [&]() -> std::optional<Device> {
    auto d = Docs<Device>(*rd_, "SELECT doc FROM devices WHERE id = $1", {id});
    if (d.empty()) return std::nullopt;
    return std::move(d[0]);
  });
}

Status PostgresStore::DeleteDevice(const std::string& id) {
  return Write("DeleteDevice", [&] {
    pg::Transaction tx(*db_);
    db_->Exec("DELETE FROM devices WHERE id = $1", {id});
    db_->Exec("DELETE FROM result_cursors WHERE device_id = $1", {id});
    tx.Commit();
  });
}

Status PostgresStore::PutEnrolment(const Enrolment& e) {
  return Write("PutEnrolment", [&] {
    db_->Exec("INSERT INTO enrolments (device_id, doc) VALUES ($1, $2) "
              "ON CONFLICT (device_id) DO UPDATE SET doc = excluded.doc",
              {e.device_id, json(e).dump()});
  });
}

Result<std::vector<Enrolment>> PostgresStore::Enrolments() {
  return Read<std::vector<Enrolment>>("Enrolments", [&] {
    return Docs<Enrolment>(*rd_, "SELECT doc FROM enrolments ORDER BY device_id");
  });
}

Status PostgresStore::DeleteEnrolment(const std::string& device_id) {
  return Write("DeleteEnrolment", [&] { db_->Exec("DELETE FROM enrolments WHERE device_id = $1", {device_id}); });
}

Status PostgresStore::PutSlice(const Slice& s) {
  return Write("PutSlice", [&] {
    db_->Exec("INSERT INTO slices (id, tenant_id, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
              {s.id, s.tenant_id, json(s).dump()});
  });
}

Result<std::vector<Slice>> PostgresStore::Slices() {
  return Read<std::vector<Slice>>("Slices", [&] { return Docs<Slice>(*rd_, "SELECT doc FROM slices ORDER BY ord"); });
}

Status PostgresStore::DeleteSlice(const std::string& id) {
  return Write("DeleteSlice", [&] { db_->Exec("DELETE FROM slices WHERE id = $1", {id}); });
}

Status PostgresStore::PutSession(const DelaySession& s) {
  return Write("PutSession", [&] {
    db_->Exec("INSERT INTO delay_sessions (id, tenant_id, doc) VALUES ($1, $2, $3) "
              "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
              {s.id, s.tenant_id, json(s).dump()});
  });
}

Result<std::vector<DelaySession>> PostgresStore::Sessions() {
  return Read<std::vector<DelaySession>>("Sessions", [&] {
    return Docs<DelaySession>(*rd_, "SELECT doc FROM delay_sessions ORDER BY ord");
  });
}

Status PostgresStore::DeleteSession(const std::string& id) {
  return Write("DeleteSession", [&] {
    pg::Transaction tx(*db_);
    for (const char* sql : {"DELETE FROM samples WHERE session_id = $1", "DELETE FROM aggregates WHERE session_id = $1",
                            "DELETE FROM session_counters WHERE session_id = $1",
                            "DELETE FROM delay_sessions WHERE id = $1"}) {
      db_->Exec(sql, {id});
    }
    tx.Commit();
  });
}

Result<SessionCounters> PostgresStore::Counters(const std::string& session_id) {
  return Read<SessionCounters>("Counters", [&]() -> SessionCounters {
    auto c = Docs<SessionCounters>(*rd_, "SELECT doc FROM session_counters WHERE session_id = $1", {session_id});
    return c.empty() ? SessionCounters{} : c[0];
  });
}

void PostgresStore::EnsurePartitions(const std::vector<SessionBatch>& batches) {
  std::set<int64_t> missing;
  for (const auto& b : batches) {
    for (const auto& s : b.samples) {
      const int64_t day = static_cast<int64_t>(s.t1) / kDayNs;
      if (!days_.count(day)) missing.insert(day);
    }
  }
  if (missing.empty()) return;
  // Controllers that meet a new day together make its partition once.
  db_->Exec(std::string("SELECT pg_advisory_xact_lock(") + kPartitionLock + ")");
  for (int64_t day : missing) {
    db_->Exec("CREATE TABLE IF NOT EXISTS " + PartitionName(day) + " PARTITION OF samples FOR VALUES FROM (" +
              Int(day * kDayNs) + ") TO (" + Int((day + 1) * kDayNs) + ")");
  }
  days_.insert(missing.begin(), missing.end());  // dropped again by Write's caller if the transaction fails
}

Status PostgresStore::WriteBatches(const std::vector<SessionBatch>& batches, const std::vector<ResultCursor>& cursors) {
  auto done = Write("WriteBatches", [&] {
    if (!staging_) {
      db_->Exec("SET client_min_messages = warning");  // "already exists" notices are not news
      db_->Exec(kStagingTables);
      staging_ = true;
    }
    pg::Transaction tx(*db_);
    EnsurePartitions(batches);
    std::string samples, aggregates, counters, where;
    uint64_t n = 0;
    for (const auto& b : batches) {
      for (const auto& s : b.samples) {
        Tab(samples, b.session_id);
        for (int64_t v : {static_cast<int64_t>(s.t1), static_cast<int64_t>(s.seq), static_cast<int64_t>(s.reflector_seq),
                          static_cast<int64_t>(s.t2), static_cast<int64_t>(s.t3), static_cast<int64_t>(s.t4),
                          static_cast<int64_t>(s.ttl), static_cast<int64_t>(s.flags)}) {
          Tab(samples, v);
        }
        EndLine(samples);
        ++n;
      }
      for (const auto& a : b.closed) {
        Tab(aggregates, b.session_id);
        Tab(aggregates, a.start_ms);
        Tab(aggregates, a.length_ms);
        Tab(aggregates, AggregateToJson(a).dump());
        EndLine(aggregates);
      }
    }
    // A flush carries many batches of each session (one per result message): only the last
    // counters of each are written.
    std::unordered_map<std::string_view, const SessionCounters*> last;
    for (const auto& b : batches) last[b.session_id] = &b.counters;
    for (const auto& [id, c] : last) {
      Tab(counters, id);
      Tab(counters, json(*c).dump());
      EndLine(counters);
    }
    for (const auto& c : cursors) {
      Tab(where, c.device_id);
      Tab(where, static_cast<int64_t>(c.log_id));
      Tab(where, static_cast<int64_t>(c.cursor));
      EndLine(where);
    }
    if (!where.empty()) {
      db_->CopyIn("COPY cursors_in (device_id, log_id, cursor) FROM STDIN", where);
      db_->Exec("INSERT INTO result_cursors SELECT DISTINCT ON (device_id) device_id, log_id, cursor FROM cursors_in "
                "ORDER BY device_id, n DESC ON CONFLICT (device_id) DO UPDATE SET log_id = excluded.log_id, "
                "cursor = excluded.cursor");
    }
    if (!samples.empty()) {
      // Straight into the table (COPY inserts rows in groups); a sample stored before (a
      // replay after a restart) fails the whole COPY, and only then do the rows go through
      // a staging table to an INSERT that skips what exists.
      db_->Exec("SAVEPOINT copy_samples");
      try {
        db_->CopyIn("COPY samples (session_id, t1, seq, reflector_seq, t2, t3, t4, ttl, flags) FROM STDIN", samples);
        db_->Exec("RELEASE copy_samples");
      } catch (const pg::Failure& f) {
        if (f.sqlstate != "23505") throw;  // not a unique violation
        db_->Exec("ROLLBACK TO copy_samples");
        db_->CopyIn("COPY samples_in FROM STDIN", samples);
        db_->Exec("INSERT INTO samples (session_id, t1, seq, reflector_seq, t2, t3, t4, ttl, flags) "
                  "SELECT * FROM samples_in ON CONFLICT DO NOTHING");
      }
    }
    if (!aggregates.empty()) {
      db_->CopyIn("COPY aggregates_in (session_id, start_ms, length_ms, doc) FROM STDIN", aggregates);
      db_->Exec("INSERT INTO aggregates SELECT DISTINCT ON (session_id, start_ms) session_id, start_ms, length_ms, doc "
                "FROM aggregates_in ORDER BY session_id, start_ms, n DESC ON CONFLICT (session_id, start_ms) "
                "DO UPDATE SET length_ms = excluded.length_ms, doc = excluded.doc");
    }
    if (!counters.empty()) {
      // The last counters of each session replace what is stored; a session seen for the
      // first time gets a row, unless it was deleted while its batch was on the way.
      db_->CopyIn("COPY counters_in (session_id, doc) FROM STDIN", counters);
      db_->Exec("WITH last AS (SELECT DISTINCT ON (session_id) session_id, doc FROM counters_in "
                "ORDER BY session_id, n DESC) "
                "UPDATE session_counters c SET doc = last.doc FROM last WHERE c.session_id = last.session_id");
      db_->Exec("INSERT INTO session_counters SELECT DISTINCT ON (i.session_id) i.session_id, i.doc FROM counters_in i "
                "JOIN delay_sessions d ON d.id = i.session_id "
                "WHERE NOT EXISTS (SELECT 1 FROM session_counters c WHERE c.session_id = i.session_id) "
                "ORDER BY i.session_id, i.n DESC ON CONFLICT (session_id) DO UPDATE SET doc = excluded.doc");
    }
    tx.Commit();
    Stored(n);
  });
  if (!done) {
    std::lock_guard lock(mu_);
    days_.clear();  // a partition made in the failed transaction is gone with it
  }
  return done;
}

Result<std::vector<ResultCursor>> PostgresStore::ResultCursors() {
  return Read<std::vector<ResultCursor>>("ResultCursors", [&]() -> std::vector<ResultCursor> {
    const auto rows = rd_->Exec("SELECT device_id, log_id, cursor FROM result_cursors ORDER BY device_id");
    std::vector<ResultCursor> out;
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back({rows.text(i, 0), static_cast<uint64_t>(rows.int64(i, 1)), static_cast<uint64_t>(rows.int64(i, 2))});
    }
    return out;
  });
}

Result<std::vector<Sample>> PostgresStore::Samples(const std::string& session_id, uint64_t since_t1, size_t limit) {
  return Read<std::vector<Sample>>("Samples", [&]() -> std::vector<Sample> {
    const auto rows = rd_->Exec("SELECT seq, reflector_seq, t1, t2, t3, t4, ttl, flags FROM samples "
                                "WHERE session_id = $1 AND t1 >= $2 ORDER BY t1, seq LIMIT $3",
                                {session_id, Int(since_t1), Int(static_cast<uint64_t>(limit))});
    std::vector<Sample> out;
    out.reserve(static_cast<size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) {
      Sample s;
      s.seq = static_cast<uint32_t>(rows.int64(i, 0));
      s.reflector_seq = static_cast<uint32_t>(rows.int64(i, 1));
      s.t1 = static_cast<uint64_t>(rows.int64(i, 2));
      s.t2 = static_cast<uint64_t>(rows.int64(i, 3));
      s.t3 = static_cast<uint64_t>(rows.int64(i, 4));
      s.t4 = static_cast<uint64_t>(rows.int64(i, 5));
      s.ttl = static_cast<uint32_t>(rows.int64(i, 6));
      s.flags = static_cast<uint32_t>(rows.int64(i, 7));
      out.push_back(s);
    }
    return out;
  });
}

Result<uint64_t> PostgresStore::SampleCount(const std::string& session_id) {
  return Read<uint64_t>("SampleCount", [&] {
    return static_cast<uint64_t>(rd_->Exec("SELECT count(*) FROM samples WHERE session_id = $1", {session_id}).int64(0, 0));
  });
}

Result<std::optional<int64_t>> PostgresStore::LastAggregateEnd(const std::string& session_id) {
  return Read<std::optional<int64_t>>("LastAggregateEnd", [&]() -> std::optional<int64_t> {
    const auto rows = rd_->Exec("SELECT start_ms + length_ms FROM aggregates WHERE session_id = $1 "
                                "ORDER BY start_ms DESC LIMIT 1",
                                {session_id});
    if (rows.empty()) return std::nullopt;
    return rows.int64(0, 0);
  });
}

Result<std::vector<IntervalAggregate>> PostgresStore::Aggregates(const std::string& session_id, int64_t since_ms,
                                                                 size_t limit) {
  return Read<std::vector<IntervalAggregate>>("Aggregates", [&]() -> std::vector<IntervalAggregate> {
    const auto rows = rd_->Exec("SELECT start_ms, length_ms, doc FROM aggregates "
                                "WHERE session_id = $1 AND start_ms + length_ms > $2 ORDER BY start_ms LIMIT $3",
                                {session_id, Int(since_ms), Int(static_cast<uint64_t>(limit))});
    std::vector<IntervalAggregate> out;
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back(AggregateFromJson(rows.int64(i, 0), rows.int64(i, 1), json::parse(rows.text(i, 2))));
    }
    return out;
  });
}

Status PostgresStore::PutLossSession(const LossSession& s) {
  return Write("PutLossSession", [&] {
    db_->Exec("INSERT INTO loss_sessions (id, tenant_id, doc) VALUES ($1, $2, $3) "
              "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
              {s.id, s.tenant_id, json(s).dump()});
  });
}

Result<std::vector<LossSession>> PostgresStore::LossSessions() {
  return Read<std::vector<LossSession>>("LossSessions", [&] {
    return Docs<LossSession>(*rd_, "SELECT doc FROM loss_sessions ORDER BY ord");
  });
}

Status PostgresStore::DeleteLossSession(const std::string& id) {
  return Write("DeleteLossSession", [&] {
    pg::Transaction tx(*db_);
    db_->Exec("DELETE FROM loss_periods WHERE session_id = $1", {id});
    db_->Exec("DELETE FROM loss_sessions WHERE id = $1", {id});
    tx.Commit();
  });
}

Result<LossCursor> PostgresStore::GetLossCursor(const std::string& id) {
  return Read<LossCursor>("GetLossCursor", [&]() -> LossCursor {
    auto c = Docs<LossCursor>(*rd_, "SELECT cursor FROM loss_sessions WHERE id = $1", {id});
    return c.empty() ? LossCursor{} : c[0];
  });
}

Status PostgresStore::WriteLossPeriod(const std::string& id, const std::optional<LossPeriod>& period,
                                      const LossCursor& cursor) {
  return Write("WriteLossPeriod", [&] {
    pg::Transaction tx(*db_);
    if (period) {
      db_->Exec("INSERT INTO loss_periods (session_id, idx, end_ms, doc) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (session_id, idx) DO UPDATE SET end_ms = excluded.end_ms, doc = excluded.doc",
                {id, Int(static_cast<uint64_t>(period->index)), Int(period->end_ms), json(*period).dump()});
    }
    db_->Exec("UPDATE loss_sessions SET cursor = $1 WHERE id = $2", {json(cursor).dump(), id});
    tx.Commit();
  });
}

Result<std::optional<LossPeriod>> PostgresStore::LastLossPeriod(const std::string& id) {
  return Read<std::optional<LossPeriod>>("LastLossPeriod", [&]() -> std::optional<LossPeriod> {
    auto p = Docs<LossPeriod>(*rd_, "SELECT doc FROM loss_periods WHERE session_id = $1 ORDER BY idx DESC LIMIT 1", {id});
    if (p.empty()) return std::nullopt;
    return p[0];
  });
}

Result<std::vector<LossPeriod>> PostgresStore::LossPeriods(const std::string& id, int64_t since_ms, size_t limit) {
  return Read<std::vector<LossPeriod>>("LossPeriods", [&] {
    return Docs<LossPeriod>(*rd_,
                            "SELECT doc FROM loss_periods WHERE session_id = $1 AND end_ms > $2 ORDER BY idx LIMIT $3",
                            {id, Int(since_ms), Int(static_cast<uint64_t>(limit))});
  });
}

Result<uint64_t> PostgresStore::Prune(uint64_t samples_before_t1, int64_t aggregates_before_ms) {
  std::vector<int64_t> dropped;
  auto n = Update<uint64_t>("Prune", [&]() -> uint64_t {
    pg::Transaction tx(*db_);
    db_->Exec(std::string("SELECT pg_advisory_xact_lock(") + kPartitionLock + ")");
    uint64_t gone = 0;
    // Whole days before the cut-off go as partitions, counted by the planner's estimate (a
    // count of a day's rows would read them all).
    const auto parts = db_->Exec("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                 "WHERE i.inhparent = 'samples'::regclass ORDER BY 1");
    for (int i = 0; i < parts.size(); ++i) {
      const auto name = parts.text(i, 0);
      const auto day = DayOf(name);
      if (!day || static_cast<uint64_t>((*day + 1) * kDayNs) > samples_before_t1) continue;
      db_->Exec("ANALYZE " + name);
      const auto est = db_->Exec("SELECT reltuples::bigint FROM pg_class WHERE relname = $1", {name}).int64(0, 0);
      db_->Exec("DROP TABLE " + name);
      gone += static_cast<uint64_t>(std::max<int64_t>(est, 0));
      dropped.push_back(*day);
    }
    gone += db_->Exec("DELETE FROM samples WHERE t1 < $1", {Int(samples_before_t1)}).affected();
    for (const char* sql : {"DELETE FROM aggregates WHERE start_ms < $1", "DELETE FROM loss_periods WHERE end_ms < $1",
                            "DELETE FROM steering_events WHERE time_ms < $1"}) {
      gone += db_->Exec(sql, {Int(aggregates_before_ms)}).affected();
    }
    tx.Commit();
    for (int64_t day : dropped) days_.erase(day);
    return gone;
  });
  return n;
}

// ---- SLA steering
namespace {

void InsertChoice(pg::Connection& db, const SteeringChoice& c) {
  db.Exec("INSERT INTO steering_choices (policy_id, from_device, to_device, doc) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (policy_id, from_device, to_device) DO UPDATE SET doc = excluded.doc",
          {c.policy_id, c.from, c.to, json(c).dump()});
}

void InsertEvents(pg::Connection& db, const std::vector<SteeringEvent>& events) {
  for (const auto& e : events) {
    db.Exec("INSERT INTO steering_events (tenant_id, slice_id, time_ms, doc) VALUES ($1, $2, $3, $4)",
            {e.tenant_id, e.slice_id, Int(e.time_ms), json(e).dump()});
  }
}

}  // namespace

Status PostgresStore::PutSla(const SlaClass& c) {
  return Write("PutSla", [&] {
    db_->Exec("INSERT INTO sla_classes (id, tenant_id, doc) VALUES ($1, $2, $3) "
              "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
              {c.id, c.tenant_id, json(c).dump()});
  });
}

Result<std::vector<SlaClass>> PostgresStore::Slas() {
  return Read<std::vector<SlaClass>>("Slas", [&] { return Docs<SlaClass>(*rd_, "SELECT doc FROM sla_classes ORDER BY ord"); });
}

Status PostgresStore::DeleteSla(const std::string& id) {
  return Write("DeleteSla", [&] { db_->Exec("DELETE FROM sla_classes WHERE id = $1", {id}); });
}

Status PostgresStore::PutPolicy(const SteeringPolicy& p, const std::vector<SteeringChoice>& choices) {
  return Write("PutPolicy", [&] {
    pg::Transaction tx(*db_);
    db_->Exec("INSERT INTO steering_policies (id, tenant_id, slice_id, doc) VALUES ($1, $2, $3, $4) "
              "ON CONFLICT (id) DO UPDATE SET slice_id = excluded.slice_id, doc = excluded.doc",
              {p.id, p.tenant_id, p.slice_id, json(p).dump()});
    for (const auto& c : choices) InsertChoice(*db_, c);
    tx.Commit();
  });
}

Result<std::vector<SteeringPolicy>> PostgresStore::Policies() {
  return Read<std::vector<SteeringPolicy>>("Policies", [&] {
    return Docs<SteeringPolicy>(*rd_, "SELECT doc FROM steering_policies ORDER BY ord");
  });
}

Status PostgresStore::DeletePolicy(const std::string& id) {
  return Write("DeletePolicy", [&] {
    pg::Transaction tx(*db_);
    db_->Exec("DELETE FROM steering_policies WHERE id = $1", {id});
    db_->Exec("DELETE FROM steering_choices WHERE policy_id = $1", {id});
    tx.Commit();
  });
}

Status PostgresStore::PutChoice(const SteeringChoice& c, const std::vector<SteeringEvent>& events) {
  return Write("PutChoice", [&] {
    pg::Transaction tx(*db_);
    InsertChoice(*db_, c);
    InsertEvents(*db_, events);
    tx.Commit();
  });
}

Result<std::vector<SteeringChoice>> PostgresStore::Choices() {
  return Read<std::vector<SteeringChoice>>("Choices", [&] {
    return Docs<SteeringChoice>(*rd_, "SELECT doc FROM steering_choices ORDER BY policy_id, from_device, to_device");
  });
}

Status PostgresStore::AddEvents(const std::vector<SteeringEvent>& events) {
  return Write("AddEvents", [&] {
    pg::Transaction tx(*db_);
    InsertEvents(*db_, events);
    tx.Commit();
  });
}

Result<std::vector<SteeringEvent>> PostgresStore::Events(const std::string& tenant, const std::string& slice,
                                                         int64_t before_id, size_t limit) {
  return Read<std::vector<SteeringEvent>>("Events", [&]() -> std::vector<SteeringEvent> {
    const auto rows = rd_->Exec("SELECT id, doc FROM steering_events WHERE ($1 = '' OR tenant_id = $1) "
                                "AND ($2 = '' OR slice_id = $2) AND ($3::bigint = 0 OR id < $3::bigint) "
                                "ORDER BY id DESC LIMIT $4::bigint",
                                {tenant, slice, Int(before_id), Int(static_cast<uint64_t>(limit))});
    std::vector<SteeringEvent> out;
    for (int i = 0; i < rows.size(); ++i) {
      auto e = json::parse(rows.text(i, 1)).get<SteeringEvent>();
      e.id = rows.int64(i, 0);
      out.push_back(std::move(e));
    }
    return out;
  });
}

Status PostgresStore::PutWebhook(const Webhook& w) {
  return Write("PutWebhook", [&] {
    db_->Exec("INSERT INTO webhooks (tenant_id, doc) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET doc = excluded.doc",
              {w.tenant_id, json(w).dump()});
  });
}

Result<std::vector<Webhook>> PostgresStore::Webhooks() {
  return Read<std::vector<Webhook>>("Webhooks", [&] { return Docs<Webhook>(*rd_, "SELECT doc FROM webhooks ORDER BY tenant_id"); });
}

Status PostgresStore::DeleteWebhook(const std::string& tenant_id) {
  return Write("DeleteWebhook", [&] { db_->Exec("DELETE FROM webhooks WHERE tenant_id = $1", {tenant_id}); });
}

}  // namespace segwan::controller
