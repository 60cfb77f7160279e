#pragma once

// A real PostgreSQL for tests: Debian's server in a private cluster (initdb in a temporary
// folder, listening on a Unix socket in that folder only, no TCP), run as the unprivileged
// `postgres` user when the test runs as root, torn down (immediate stop, folder removed) when
// the object goes. Start() says why when it cannot: the test then skips with that reason.
#include <memory>
#include <optional>
#include <string>

namespace segwan::testing {

class TestPostgres {
 public:
  // Starts the cluster with a database `segwan` owned by role `segwan`; nothing on failure.
  // Tests run without fsync (seconds saved); `durable`: with PostgreSQL's own defaults, as an
  // operator would run it (benchmarks).
  static std::optional<TestPostgres> Start(std::string* why, bool durable = false);
  TestPostgres(TestPostgres&& o) noexcept
      : dir_(std::move(o.dir_)), user_(std::move(o.user_)), durable_(o.durable_) {
    o.dir_.clear();
  }
  TestPostgres(const TestPostgres&) = delete;
  TestPostgres& operator=(const TestPostgres&) = delete;
  ~TestPostgres();

  // libpq connection string: the socket folder as host, trust authentication.
  std::string Uri() const { return UriOf("segwan"); }
  std::string UriOf(const std::string& database) const;
  // A new empty database owned by `segwan`; its URI, or nothing (why in *why).
  std::optional<std::string> CreateDatabase(const std::string& name, std::string* why);
  // Stops the server at once (as a crash would: -m immediate), the cluster kept.
  bool Kill();
  // Starts the server again on the same cluster and socket.
  bool Restart();

 private:
  TestPostgres(std::string dir, std::string user, bool durable)
      : dir_(std::move(dir)), user_(std::move(user)), durable_(durable) {}
  bool StartServer();
  std::string dir_;   // cluster and socket folder
  std::string user_;  // who runs the server ("" = this process's user)
  bool durable_ = false;
};

// One cluster per test process, started at the first call (nullptr, and why, if it cannot).
TestPostgres* SharedPostgres(std::string* why);
// A fresh database in the shared cluster for each call: its URI, or nothing (why in *why).
std::optional<std::string> FreshPostgresDatabase(std::string* why);

}  // namespace segwan::testing
