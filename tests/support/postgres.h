#pragma once

// A real PostgreSQL for tests: Debian's server in a private cluster (initdb in a temporary
// folder, listening on a Unix socket in that folder only, no TCP), run as the unprivileged
// `postgres` user when the test runs as root, torn down (immediate stop, folder removed) when
// the object goes. Start() says why when it cannot: the test then skips with that reason.
#include <optional>
#include <string>

namespace segwan::testing {

class TestPostgres {
 public:
  // Starts the cluster with a database `segwan` owned by role `segwan`; nothing on failure.
  static std::optional<TestPostgres> Start(std::string* why);
  TestPostgres(TestPostgres&& o) noexcept : dir_(std::move(o.dir_)), user_(std::move(o.user_)) { o.dir_.clear(); }
  TestPostgres(const TestPostgres&) = delete;
  TestPostgres& operator=(const TestPostgres&) = delete;
  ~TestPostgres();

  // libpq connection string: the socket folder as host, trust authentication.
  std::string Uri() const;
  // Stops the server at once (as a crash would: -m immediate), the cluster kept.
  bool Kill();

 private:
  TestPostgres(std::string dir, std::string user) : dir_(std::move(dir)), user_(std::move(user)) {}
  std::string dir_;   // cluster and socket folder
  std::string user_;  // who runs the server ("" = this process's user)
};

}  // namespace segwan::testing
