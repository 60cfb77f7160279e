#pragma once

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

// What one poll brought for one session: written together, in one transaction per poll.
struct SessionBatch {
  std::string session_id;
  std::vector<Sample> samples;
  std::vector<IntervalAggregate> closed;  // intervals that ended with this batch
  SessionCounters counters;               // totals after this batch
};

// The controller's SQLite file (SQLiteCpp): WAL mode, schema migrations numbered in code and
// applied in order at open, writes in transactions. One connection, guarded by a mutex:
// every call is a short transaction, so callers from several threads simply take turns.
// Domain objects are rows with their fields as a JSON column (the shapes live in model.h);
// samples and aggregates are indexed by session and time.
class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int SchemaVersion();
  static int LatestSchemaVersion();

  // Next value of a named sequence ("tenant", "slice", "session", "slice-number", "ssid").
  uint64_t NextId(const std::string& sequence);

  void PutTenant(const Tenant& t);
  std::vector<Tenant> Tenants();

  void PutDevice(const Device& d);
  std::vector<Device> Devices();
  std::optional<Device> GetDevice(const std::string& id);
  void DeleteDevice(const std::string& id);

  void PutEnrolment(const Enrolment& e);
  std::vector<Enrolment> Enrolments();
  void DeleteEnrolment(const std::string& device_id);

  void PutSlice(const Slice& s);
  std::vector<Slice> Slices();
  void DeleteSlice(const std::string& id);

  void PutSession(const DelaySession& s);
  std::vector<DelaySession> Sessions();
  // Removes the session with its samples and aggregates.
  void DeleteSession(const std::string& id);
  SessionCounters Counters(const std::string& session_id);

  // Samples, closed aggregates and counters of many sessions in one transaction.
  void WriteBatches(const std::vector<SessionBatch>& batches);
  // Samples with T1 >= since_t1 (TAI ns), oldest first.
  std::vector<Sample> Samples(const std::string& session_id, uint64_t since_t1, size_t limit);
  uint64_t SampleCount(const std::string& session_id);
  // Where the last closed interval of a session ends (UTC ms), if it has one.
  std::optional<int64_t> LastAggregateEnd(const std::string& session_id);
  // Aggregates that end after since_ms (so the one holding since_ms is in), oldest first.
  std::vector<IntervalAggregate> Aggregates(const std::string& session_id, int64_t since_ms,
                                            size_t limit);
  void PutLossSession(const LossSession& s);
  std::vector<LossSession> LossSessions();
  void DeleteLossSession(const std::string& id);  // with its periods
  LossCursor GetLossCursor(const std::string& id);
  // A closed period (if any) and the cursor after it, in one transaction.
  void WriteLossPeriod(const std::string& id, const std::optional<LossPeriod>& period, const LossCursor& cursor);
  std::optional<LossPeriod> LastLossPeriod(const std::string& id);
  // Periods that end after since_ms, oldest first.
  std::vector<LossPeriod> LossPeriods(const std::string& id, int64_t since_ms, size_t limit);

  // Deletes samples, aggregates and loss periods older than the cut-off; returns how many rows went.
  uint64_t Prune(uint64_t samples_before_t1, int64_t aggregates_before_ms);
  uint64_t SamplesStored() { return samples_stored_; }
  uint64_t BatchesWritten() { return batches_written_; }  // WriteBatches transactions since open

 private:
  explicit Store(std::unique_ptr<SQLite::Database> db);
  void Migrate();
  std::mutex mu_;  // guards db_
  std::unique_ptr<SQLite::Database> db_;
  uint64_t samples_stored_ = 0;  // since open
  uint64_t batches_written_ = 0;
};

}  // namespace segwan::controller
