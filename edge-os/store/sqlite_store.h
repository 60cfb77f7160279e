#pragma once

#include "edge-os/store/engine.h"

namespace SQLite {
class Database;
}

namespace segwan::controller {

// The embedded engine (SQLiteCpp): one file in WAL mode, a write connection and a read
// connection (in WAL mode reads see every committed transaction and never wait for the
// writer). Schema version in PRAGMA user_version.
class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& path, bool allow_empty);
  ~SqliteStore() override;

  const char* Engine() const override { return "sqlite"; }
  SEGWAN_STORE_ENGINE_OVERRIDES

 private:
  SqliteStore(std::unique_ptr<SQLite::Database> db, std::string path);
  void Migrate();
  std::unique_ptr<SQLite::Database> db_;  // writes, under mu_
  std::unique_ptr<SQLite::Database> rd_;  // reads, under rd_mu_
};

}  // namespace segwan::controller
