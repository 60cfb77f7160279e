#include "postgres.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace segwan::testing {

namespace {

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

// Runs argv (as `user` when not empty), waits; true on exit status 0. Output goes to `log`.
bool Run(const std::vector<std::string>& argv, const std::string& user, const std::string& log) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (!user.empty()) {
      const passwd* pw = getpwnam(user.c_str());
      if (!pw || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(126);
    }
    if (FILE* f = std::freopen(log.c_str(), "a", stdout)) (void)f;
    dup2(STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

std::optional<TestPostgres> TestPostgres::Start(std::string* why, bool durable) {
  const std::string bin = kBinDir;
  if (access((bin + "/initdb").c_str(), X_OK) != 0) {
    *why = "PostgreSQL 15 is not installed (" + bin + "/initdb)";
    return std::nullopt;
  }
  // initdb refuses root: the server runs as Debian's postgres user then.
  std::string user;
  if (geteuid() == 0) {
    if (!getpwnam("postgres")) {
      *why = "running as root and there is no postgres user to run the server as";
      return std::nullopt;
    }
    user = "postgres";
  }
  char tmpl[] = "/tmp/segwan-pg-XXXXXX";
  if (!mkdtemp(tmpl)) {
    *why = "no temporary folder";
    return std::nullopt;
  }
  TestPostgres pg(tmpl, user, durable);
  if (!user.empty()) {
    const passwd* pw = getpwnam(user.c_str());
    if (chown(tmpl, pw->pw_uid, pw->pw_gid) != 0) {
      *why = "cannot hand the folder to the postgres user";
      return std::nullopt;
    }
  }
  const std::string data = pg.dir_ + "/data", log = pg.dir_ + "/log";
  if (!Run({bin + "/initdb", "-D", data, "-A", "trust", "-U", "segwan", "-E", "UTF8", "--no-sync"}, user, log)) {
    *why = "initdb failed (see " + log + ")";
    return std::nullopt;
  }
  if (!pg.StartServer()) {
    *why = "the server did not start (see " + log + ")";
    return std::nullopt;
  }
  if (!Run({bin + "/createdb", "-h", pg.dir_, "-U", "segwan", "segwan"}, user, log)) {
    *why = "createdb failed (see " + log + ")";
    return std::nullopt;
  }
  return pg;
}

bool TestPostgres::StartServer() {
  // No TCP at all; the socket in the cluster's folder; fsync off (a test's data need not
  // survive a power cut, and it saves seconds).
  std::string opts = "-k " + dir_ + " -c listen_addresses=";
  if (!durable_) opts += " -c fsync=off -c full_page_writes=off";
  return Run({std::string(kBinDir) + "/pg_ctl", "-D", dir_ + "/data", "-o", opts, "-l", dir_ + "/log", "-w", "-t", "30",
              "start"},
             user_, dir_ + "/log");
}

bool TestPostgres::Restart() { return StartServer(); }

std::string TestPostgres::UriOf(const std::string& database) const {
  return "postgresql:///" + database + "?host=" + dir_ + "&user=segwan";
}

std::optional<std::string> TestPostgres::CreateDatabase(const std::string& name, std::string* why) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(Uri().c_str()), PQfinish);
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    *why = std::string("cannot connect: ") + PQerrorMessage(c.get());
    return std::nullopt;
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), ("CREATE DATABASE " + name).c_str()), PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    *why = std::string("CREATE DATABASE failed: ") + PQerrorMessage(c.get());
    return std::nullopt;
  }
  return UriOf(name);
}

TestPostgres* SharedPostgres(std::string* why) {
  static std::string reason;
  static std::unique_ptr<TestPostgres> shared = [] {
    auto pg = TestPostgres::Start(&reason);
    return pg ? std::make_unique<TestPostgres>(std::move(*pg)) : nullptr;
  }();
  if (!shared) *why = reason;
  return shared.get();
}

std::optional<std::string> FreshPostgresDatabase(std::string* why) {
  static int n = 0;
  TestPostgres* pg = SharedPostgres(why);
  if (!pg) return std::nullopt;
  return pg->CreateDatabase("t" + std::to_string(++n), why);
}

bool TestPostgres::Kill() {
  return Run({std::string(kBinDir) + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "stop"}, user_,
             dir_ + "/log");
}

TestPostgres::~TestPostgres() {
  if (dir_.empty()) return;
  Kill();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace segwan::testing
