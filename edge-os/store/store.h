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

namespace SQLite {
class Database;
}

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

// The controller's SQLite file (SQLiteCpp): WAL mode, schema migrations numbered in code and
// applied in order at open, writes in transactions. Nothing here throws: a failed read or
// write (disk full, I/O error, a corrupted page) is an Error with code kStoreUnavailable
// (503), logged and counted, and the transaction it was in is rolled back. One connection, guarded by a mutex:
// every call is a short transaction, so callers from several threads simply take turns.
// Domain objects are rows with their fields as a JSON column (the shapes live in model.h);
// samples and aggregates are indexed by session and time.
class Store {
 public:
  // Refuses, naming the file, what is not a sound SegWAN store: a file SQLite cannot read,
  // one PRAGMA quick_check finds damaged, one with other applications' tables, and a
  // zero-length file unless `allow_empty` (a new data folder: an empty file elsewhere is
  // a store that lost its content, not a new one).
  static Result<std::unique_ptr<Store>> Open(const std::string& path, bool allow_empty = true);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int SchemaVersion();
  static int LatestSchemaVersion();

  // Next value of a named sequence ("tenant", "slice", "session", "slice-number", "ssid").
  Result<uint64_t> NextId(const std::string& sequence);

  Status PutTenant(const Tenant& t);
  Result<std::vector<Tenant>> Tenants();

  Status PutDevice(const Device& d);
  Result<std::vector<Device>> Devices();
  Result<std::optional<Device>> GetDevice(const std::string& id);
  Status DeleteDevice(const std::string& id);

  Status PutEnrolment(const Enrolment& e);
  Result<std::vector<Enrolment>> Enrolments();
  Status DeleteEnrolment(const std::string& device_id);

  Status PutSlice(const Slice& s);
  Result<std::vector<Slice>> Slices();
  Status DeleteSlice(const std::string& id);

  Status PutSession(const DelaySession& s);
  Result<std::vector<DelaySession>> Sessions();
  // Removes the session with its samples and aggregates.
  Status DeleteSession(const std::string& id);
  Result<SessionCounters> Counters(const std::string& session_id);

  // Samples, closed aggregates and counters of many sessions in one transaction, with the
  // result-log cursors they bring the devices to.
  Status WriteBatches(const std::vector<SessionBatch>& batches, const std::vector<ResultCursor>& cursors = {});
  Result<std::vector<ResultCursor>> ResultCursors();
  // Samples with T1 >= since_t1 (TAI ns), oldest first.
  Result<std::vector<Sample>> Samples(const std::string& session_id, uint64_t since_t1, size_t limit);
  Result<uint64_t> SampleCount(const std::string& session_id);
  // Where the last closed interval of a session ends (UTC ms), if it has one.
  Result<std::optional<int64_t>> LastAggregateEnd(const std::string& session_id);
  // Aggregates that end after since_ms (so the one holding since_ms is in), oldest first.
  Result<std::vector<IntervalAggregate>> Aggregates(const std::string& session_id, int64_t since_ms,
                                            size_t limit);
  Status PutLossSession(const LossSession& s);
  Result<std::vector<LossSession>> LossSessions();
  Status DeleteLossSession(const std::string& id);  // with its periods
  Result<LossCursor> GetLossCursor(const std::string& id);
  // A closed period (if any) and the cursor after it, in one transaction.
  Status WriteLossPeriod(const std::string& id, const std::optional<LossPeriod>& period, const LossCursor& cursor);
  Result<std::optional<LossPeriod>> LastLossPeriod(const std::string& id);
  // Periods that end after since_ms, oldest first.
  Result<std::vector<LossPeriod>> LossPeriods(const std::string& id, int64_t since_ms, size_t limit);

  // SLA steering. A policy is written with its directions' first choices; a choice with the
  // events that explain it, in one transaction.
  Status PutSla(const SlaClass& c);
  Result<std::vector<SlaClass>> Slas();
  Status DeleteSla(const std::string& id);
  Status PutPolicy(const SteeringPolicy& p, const std::vector<SteeringChoice>& choices);
  Result<std::vector<SteeringPolicy>> Policies();
  Status DeletePolicy(const std::string& id);  // with its choices
  Status PutChoice(const SteeringChoice& c, const std::vector<SteeringEvent>& events);
  Result<std::vector<SteeringChoice>> Choices();
  Status AddEvents(const std::vector<SteeringEvent>& events);
  // Newest first; empty tenant or slice: all; before_id 0: from the newest (paging: pass the
  // last id of the previous page).
  Result<std::vector<SteeringEvent>> Events(const std::string& tenant, const std::string& slice, int64_t before_id,
                                            size_t limit);

  Status PutWebhook(const Webhook& w);
  Result<std::vector<Webhook>> Webhooks();
  Status DeleteWebhook(const std::string& tenant_id);

  // Deletes samples, aggregates, loss periods and steering events older than the cut-off; returns how many rows went.
  Result<uint64_t> Prune(uint64_t samples_before_t1, int64_t aggregates_before_ms);
  uint64_t SamplesStored() { return samples_stored_; }
  uint64_t Errors() { return errors_; }  // failed reads and writes since open
  uint64_t BatchesWritten() { return batches_written_; }  // WriteBatches transactions since open

 private:
  Store(std::unique_ptr<SQLite::Database> db, std::string path);
  void Migrate();
  Error Failed(const char* what, const std::exception& e);
  template <typename F>
  Status Write(const char* what, F&& f) {
    std::lock_guard lock(mu_);
    try {
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
      return f();
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
  }
  template <typename T, typename F>
  Result<T> Update(const char* what, F&& f) {  // a write that returns a value
    std::lock_guard lock(mu_);
    try {
      return f();
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
  }
  std::mutex mu_;  // guards db_ (writes)
  std::unique_ptr<SQLite::Database> db_;
  std::mutex rd_mu_;  // guards rd_ (reads)
  std::unique_ptr<SQLite::Database> rd_;
  std::string path_;
  std::atomic<uint64_t> errors_{0};
  uint64_t samples_stored_ = 0;  // since open
  uint64_t batches_written_ = 0;
};

}  // namespace segwan::controller
