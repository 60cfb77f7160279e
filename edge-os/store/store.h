#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/monitoring/stats.h"
#include "segwan/result.h"

namespace segwan::controller {

inline constexpr int kStoreUnavailable = 503;  // Error.code of a failed store call

// What one poll brought for one session: written together, in one transaction per poll.
struct SessionBatch {
  std::string session_id;
  std::vector<Sample> samples;
  std::vector<IntervalAggregate> closed;  // intervals that ended with this batch
  SessionCounters counters;               // totals after this batch
};

// Notification mode: the last record of a device's result log whose samples are stored.
struct ResultCursor {
  std::string device_id;
  uint64_t log_id = 0;
  uint64_t cursor = 0;
};

// Where the controller keeps its data, behind one interface with two engines:
// - SQLite (default, SqliteStore): one file, nothing to install, one controller.
// - PostgreSQL (PostgresStore, a postgresql:// URI): shared by several controllers, of
//   which one leads.
// Both apply numbered schema migrations at open and write in transactions. Nothing here
// throws: a failed read or write (disk full, I/O error, a lost database connection) is an
// Error with code kStoreUnavailable (503), logged and counted, and the transaction it was in
// is rolled back. Every call is a short transaction on one of two connections (writes,
// reads), each guarded by its own mutex: callers from several threads take turns, and a long
// write does not hold up reads. Domain objects are rows with their fields as a JSON column
// (the shapes live in model.h); samples and aggregates are indexed by session and time.
// Lists come back in the order their objects were created.
class Store {
 public:
  // `where` is a file path (SQLite) or a postgresql:// (postgres://) URI. A SQLite file is
  // refused, naming it, when it is not a sound SegWAN store: a file SQLite cannot read, one
  // PRAGMA quick_check finds damaged, one with other applications' tables, and a zero-length
  // file unless `allow_empty` (a new data folder: an empty file elsewhere is a store that
  // lost its content, not a new one). A PostgreSQL database with other applications' tables
  // in its schema is refused too.
  static Result<std::unique_ptr<Store>> Open(const std::string& where, bool allow_empty = true);
  static bool IsPostgres(const std::string& where);
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  virtual const char* Engine() const = 0;  // "sqlite" or "postgresql"
  const std::string& Where() const { return where_; }  // the file, or the URI without its password
  virtual int SchemaVersion() = 0;
  virtual int LatestSchemaVersion() const = 0;

  // Next value of a named sequence ("tenant", "slice", "session", "slice-number", "ssid").
  virtual Result<uint64_t> NextId(const std::string& sequence) = 0;

  virtual Status PutTenant(const Tenant& t) = 0;
  virtual Result<std::vector<Tenant>> Tenants() = 0;

  virtual Status PutDevice(const Device& d) = 0;
  virtual Result<std::vector<Device>> Devices() = 0;  // by id
  virtual Result<std::optional<Device>> GetDevice(const std::string& id) = 0;
  virtual Status DeleteDevice(const std::string& id) = 0;

  virtual Status PutEnrolment(const Enrolment& e) = 0;
  virtual Result<std::vector<Enrolment>> Enrolments() = 0;  // by device id
  virtual Status DeleteEnrolment(const std::string& device_id) = 0;

  virtual Status PutSlice(const Slice& s) = 0;
  virtual Result<std::vector<Slice>> Slices() = 0;
  virtual Status DeleteSlice(const std::string& id) = 0;

  virtual Status PutSession(const DelaySession& s) = 0;
  virtual Result<std::vector<DelaySession>> Sessions() = 0;
  // Removes the session with its samples and aggregates.
  virtual Status DeleteSession(const std::string& id) = 0;
  virtual Result<SessionCounters> Counters(const std::string& session_id) = 0;

  // Samples, closed aggregates and counters of many sessions in one transaction, with the
  // result-log cursors they bring the devices to. A sample already stored (same session, T1
  // and sequence number) is kept as it was; counters of a session that is gone are dropped.
  virtual Status WriteBatches(const std::vector<SessionBatch>& batches,
                              const std::vector<ResultCursor>& cursors = {}) = 0;
  virtual Result<std::vector<ResultCursor>> ResultCursors() = 0;  // by device id
  // Samples with T1 >= since_t1 (TAI ns), oldest first.
  virtual Result<std::vector<Sample>> Samples(const std::string& session_id, uint64_t since_t1, size_t limit) = 0;
  virtual Result<uint64_t> SampleCount(const std::string& session_id) = 0;
  // Where the last closed interval of a session ends (UTC ms), if it has one.
  virtual Result<std::optional<int64_t>> LastAggregateEnd(const std::string& session_id) = 0;
  // Aggregates that end after since_ms (so the one holding since_ms is in), oldest first.
  virtual Result<std::vector<IntervalAggregate>> Aggregates(const std::string& session_id, int64_t since_ms,
                                                            size_t limit) = 0;
  virtual Status PutLossSession(const LossSession& s) = 0;
  virtual Result<std::vector<LossSession>> LossSessions() = 0;
  virtual Status DeleteLossSession(const std::string& id) = 0;  // with its periods
  virtual Result<LossCursor> GetLossCursor(const std::string& id) = 0;
  // A closed period (if any) and the cursor after it, in one transaction.
  virtual Status WriteLossPeriod(const std::string& id, const std::optional<LossPeriod>& period,
                                 const LossCursor& cursor) = 0;
  virtual Result<std::optional<LossPeriod>> LastLossPeriod(const std::string& id) = 0;
  // Periods that end after since_ms, oldest first.
  virtual Result<std::vector<LossPeriod>> LossPeriods(const std::string& id, int64_t since_ms, size_t limit) = 0;

  // SLA steering. A policy is written with its directions' first choices; a choice with the
  // events that explain it, in one transaction.
  virtual Status PutSla(const SlaClass& c) = 0;
  virtual Result<std::vector<SlaClass>> Slas() = 0;
  virtual Status DeleteSla(const std::string& id) = 0;
  virtual Status PutPolicy(const SteeringPolicy& p, const std::vector<SteeringChoice>& choices) = 0;
  virtual Result<std::vector<SteeringPolicy>> Policies() = 0;
  virtual Status DeletePolicy(const std::string& id) = 0;  // with its choices
  virtual Status PutChoice(const SteeringChoice& c, const std::vector<SteeringEvent>& events) = 0;
  virtual Result<std::vector<SteeringChoice>> Choices() = 0;  // by policy, from, to
  virtual Status AddEvents(const std::vector<SteeringEvent>& events) = 0;
  // Newest first; empty tenant or slice: all; before_id 0: from the newest (paging: pass the
  // last id of the previous page).
  virtual Result<std::vector<SteeringEvent>> Events(const std::string& tenant, const std::string& slice,
                                                    int64_t before_id, size_t limit) = 0;

  virtual Status PutWebhook(const Webhook& w) = 0;
  virtual Result<std::vector<Webhook>> Webhooks() = 0;  // by tenant id
  virtual Status DeleteWebhook(const std::string& tenant_id) = 0;

  // Deletes samples, aggregates, loss periods and steering events older than the cut-off;
  // returns how many rows went (PostgreSQL: whole days of samples are dropped as partitions
  // and counted by the planner's estimate).
  virtual Result<uint64_t> Prune(uint64_t samples_before_t1, int64_t aggregates_before_ms) = 0;

  uint64_t SamplesStored() const { return samples_stored_; }    // since open
  uint64_t Errors() const { return errors_; }                   // failed reads and writes since open
  uint64_t BatchesWritten() const { return batches_written_; }  // WriteBatches transactions since open

 protected:
  explicit Store(std::string where) : where_(std::move(where)) {}
  Error Failed(const char* what, const std::exception& e);
  // Called with the connection's mutex held before each call: PostgreSQL reconnects here.
  virtual void Ready(bool /*writer*/) {}
  template <typename F>
  Status Write(const char* what, F&& f) {
    std::lock_guard lock(mu_);
    try {
      Ready(true);
      f();
      return Status::Ok();
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
  }
  template <typename T, typename F>
  Result<T> Read(const char* what, F&& f) {
    std::lock_guard lock(rd_mu_);
    try {
      Ready(false);
      return f();
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
  }
  template <typename T, typename F>
  Result<T> Update(const char* what, F&& f) {  // a write that returns a value
    std::lock_guard lock(mu_);
    try {
      Ready(true);
      return f();
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
  }
  void Stored(uint64_t samples) {
    samples_stored_ += samples;
    ++batches_written_;
  }

  std::mutex mu_;     // guards the engine's write connection
  std::mutex rd_mu_;  // guards the engine's read connection

 private:
  std::string where_;
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> samples_stored_{0};
  std::atomic<uint64_t> batches_written_{0};
};

// Shared by the engines: an aggregate's document column.
nlohmann::json AggregateToJson(const IntervalAggregate& a);
IntervalAggregate AggregateFromJson(int64_t start_ms, int64_t length_ms, const nlohmann::json& j);

}  // namespace segwan::controller
