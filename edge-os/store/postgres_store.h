#pragma once

#include <chrono>
#include <set>

#include "edge-os/store/engine.h"

namespace segwan::pg {
class Connection;
}

namespace segwan::controller {

// The shared engine: a PostgreSQL database several controllers use at once (libpq). A write
// connection and a read connection, each reconnected at its next call after a loss; a call
// on a lost connection is a 503 like any other store failure. Schema version in the table
// segwan_schema; migrations run under an advisory lock, so controllers starting together
// migrate once. Samples are partitioned by day of T1 (TAI) into samples_YYYYMMDD, made as
// the first sample of a day arrives; retention drops whole days. Each WriteBatches is a
// fixed number of round trips whatever its size: COPY into temporary tables, then one
// INSERT ... SELECT per table.
class PostgresStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& uri);
  ~PostgresStore() override;

  const char* Engine() const override { return "postgresql"; }
  SEGWAN_STORE_ENGINE_OVERRIDES

  // The partition that holds samples of day `day` (days since 1970-01-01 in TAI).
  static std::string PartitionName(int64_t day);

 private:
  PostgresStore(std::unique_ptr<pg::Connection> db, std::unique_ptr<pg::Connection> rd, std::string where);
  void Ready(bool writer) override;
  void Migrate();
  void EnsurePartitions(const std::vector<SessionBatch>& batches);
  std::unique_ptr<pg::Connection> db_;  // writes, under mu_
  std::unique_ptr<pg::Connection> rd_;  // reads, under rd_mu_
  std::set<int64_t> days_;              // sample partitions known to exist (under mu_)
  bool staging_ = false;                // this session's temporary tables exist (under mu_)
  std::chrono::steady_clock::time_point db_retry_at_, rd_retry_at_;  // no reconnect before (each under its mutex)
};

}  // namespace segwan::controller
