// The PostgreSQL the controllers will share, started for real (tests/support/postgres.h), and
// the three things leader election and hand-over are to be built on, checked against it
// through libpq: a session advisory lock is one session's and is released when that session
// ends; LISTEN/NOTIFY reaches another session; a server that dies is seen by a session's next
// query, not hidden.
#include <libpq-fe.h>
#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "postgres.h"

namespace segwan::testing {
namespace {

using namespace std::chrono_literals;

struct Conn {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c{nullptr, PQfinish};
  explicit Conn(const std::string& uri) : c(PQconnectdb(uri.c_str()), PQfinish) {}
  bool ok() const { return c && PQstatus(c.get()) == CONNECTION_OK; }
  // The first value of the first row, or nothing when the query fails.
  std::optional<std::string> One(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), PQclear);
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return std::nullopt;
    if (st == PGRES_COMMAND_OK || PQntuples(r.get()) == 0) return std::string();
    return std::string(PQgetvalue(r.get(), 0, 0));
  }
};

class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    auto pg = TestPostgres::Start(&why);
    if (!pg) GTEST_SKIP() << "no PostgreSQL to test with: " << why;
    pg_ = std::make_unique<TestPostgres>(std::move(*pg));
  }
  std::unique_ptr<TestPostgres> pg_;
};

TEST_F(PostgresTest, AdvisoryLockIsOneSessionsAndGoesWithIt) {
  Conn a(pg_->Uri()), b(pg_->Uri());
  ASSERT_TRUE(a.ok()) << PQerrorMessage(a.c.get());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a.One("CREATE TABLE t (v integer)"), "");
  EXPECT_EQ(a.One("INSERT INTO t VALUES (42)"), "");
  EXPECT_EQ(b.One("SELECT v FROM t"), "42") << "both sessions see one database";

  EXPECT_EQ(a.One("SELECT pg_try_advisory_lock(7001)"), "t");
  EXPECT_EQ(b.One("SELECT pg_try_advisory_lock(7001)"), "f") << "held by the other session";
  a.c.reset();  // the holder's session ends (a process killed: its socket closes)
  bool taken = false;
  for (int i = 0; i < 50 && !taken; ++i) {
    taken = b.One("SELECT pg_try_advisory_lock(7001)") == "t";
    if (!taken) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(taken) << "released with the session that held it";
}

TEST_F(PostgresTest, NotifyReachesAListeningSession) {
  Conn listener(pg_->Uri()), writer(pg_->Uri());
  ASSERT_TRUE(listener.ok() && writer.ok());
  ASSERT_EQ(listener.One("LISTEN segwan_changes"), "");
  ASSERT_EQ(writer.One("NOTIFY segwan_changes, 'slice:sl1'"), "");
  pollfd p{PQsocket(listener.c.get()), POLLIN, 0};
  std::string got;
  for (int i = 0; i < 20 && got.empty(); ++i) {
    poll(&p, 1, 100);
    PQconsumeInput(listener.c.get());
    if (PGnotify* n = PQnotifies(listener.c.get())) {
      got = std::string(n->relname) + " " + n->extra;
      PQfreemem(n);
    }
  }
  EXPECT_EQ(got, "segwan_changes slice:sl1");
}

TEST_F(PostgresTest, ADeadServerIsSeenByTheNextQuery) {
  Conn a(pg_->Uri());
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a.One("SELECT 1"), "1");
  ASSERT_TRUE(pg_->Kill());
  EXPECT_EQ(a.One("SELECT 1"), std::nullopt) << "the server's goodbye fails the query";
  EXPECT_EQ(a.One("SELECT 1"), std::nullopt);
  EXPECT_EQ(PQstatus(a.c.get()), CONNECTION_BAD) << "the session is known to be lost";
}

}  // namespace
}  // namespace segwan::testing
