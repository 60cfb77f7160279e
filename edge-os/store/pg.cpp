#include "edge-os/store/pg.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdlib>
#include <regex>

#include "segwan/log.h"

namespace segwan::pg {

namespace {

// libpq's message on one line: its first line, without the hints after it.
std::string OneLine(const char* text) {
  std::string msg = text ? text : "";
  if (const auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return msg;
}

// A connection-level failure (no answer, or SQLSTATE class 08 / an administrator's or a
// crash's shutdown): the session is gone even when libpq has not noticed yet.
bool SessionLost(const std::string& state) {
  return state.empty() || state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0;
}

void DropNotice(void* /*arg*/, const PGresult* r) {
  SEGWAN_LOG(kDebug, "pg") << OneLine(PQresultErrorMessage(r));
}

}  // namespace

void Connection::Throw(PGresult* r, const std::string& what) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const std::string msg = OneLine(r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(c_));
  if (r) PQclear(r);
  Failure f(what + ": " + msg, state ? state : "");
  if (SessionLost(f.sqlstate)) lost_ = true;
  throw f;
}

Rows::Rows(PGresult* r) : r_(r) {}
Rows::Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
Rows& Rows::operator=(Rows&& o) noexcept {
  std::swap(r_, o.r_);
  return *this;
}
Rows::~Rows() {
  if (r_) PQclear(r_);
}
int Rows::size() const { return r_ ? PQntuples(r_) : 0; }
bool Rows::null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string Rows::text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
int64_t Rows::int64(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }
uint64_t Rows::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return *n ? std::strtoull(n, nullptr, 10) : 0;
}

std::unique_ptr<Connection> Connection::Open(const std::string& uri, const std::string& application,
                                             std::string* error, const std::string& settings) {
  const std::string options =
      "-c statement_timeout=30000 -c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000 " + settings;
  // Defaults first: the expanded URI (dbname) comes after them and overrides what it names.
  const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "application_name", "options", "dbname", nullptr};
  const char* values[] = {"5", "1", "5", "2", "3", "10000", application.c_str(), options.c_str(), uri.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    *error = c ? OneLine(PQerrorMessage(c)) : "out of memory";
    if (c) PQfinish(c);
    return nullptr;
  }
  PQsetNoticeReceiver(c, DropNotice, nullptr);  // not to stderr: the server's notices are ours to log
  return std::unique_ptr<Connection>(new Connection(c));
}

Connection::~Connection() { PQfinish(c_); }

Rows Connection::Exec(const std::string& sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* r = params.empty() ? PQexec(c_, sql.c_str())
                               : PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                              values.data(), nullptr, nullptr, 0);
  const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) Throw(r, sql.substr(0, sql.find_first_of(" (")));
  return Rows(r);
}

bool Connection::AnswersWithin(const std::string& sql, std::chrono::milliseconds timeout) {
  if (!Ok() || PQsendQuery(c_, sql.c_str()) != 1) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool good = true;
  while (true) {
    while (!PQisBusy(c_)) {
      PGresult* r = PQgetResult(c_);
      if (!r) return good;
      const auto st = PQresultStatus(r);
      good = good && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
      PQclear(r);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{PQsocket(c_), POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0 || PQconsumeInput(c_) != 1) {
      lost_ = true;  // the session is in an unknown state: not used again
      return false;
    }
  }
}

void Connection::CopyIn(const std::string& sql, std::string_view data) {
  PGresult* r = PQexec(c_, sql.c_str());
  if (!r || PQresultStatus(r) != PGRES_COPY_IN) Throw(r, "COPY");
  PQclear(r);
  // Blocking connection: PQputCopyData sends in pieces and waits for room itself.
  constexpr size_t kChunk = 1 << 20;
  for (size_t off = 0; off < data.size(); off += kChunk) {
    const auto n = std::min(kChunk, data.size() - off);
    if (PQputCopyData(c_, data.data() + off, static_cast<int>(n)) != 1) Throw(nullptr, "COPY");
  }
  if (PQputCopyEnd(c_, nullptr) != 1) Throw(nullptr, "COPY");
  r = PQgetResult(c_);
  const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK) {
    while (PGresult* more = PQgetResult(c_)) PQclear(more);
    Throw(r, "COPY");
  }
  PQclear(r);
  while (PGresult* more = PQgetResult(c_)) PQclear(more);
}

bool Connection::Ok() const { return !lost_ && PQstatus(c_) == CONNECTION_OK; }

bool Connection::Reset() {
  PQreset(c_);
  lost_ = PQstatus(c_) != CONNECTION_OK;
  return !lost_;
}

std::string Connection::LastError() const { return OneLine(PQerrorMessage(c_)); }

std::string Connection::Redacted(const std::string& uri) {
  // postgresql://user:secret@host/db and password=secret in key=value form
  static const std::regex kUriPassword(R"((://[^:/@]*):[^@/]*@)");
  static const std::regex kKeyPassword(R"(password\s*=\s*('[^']*'|[^&\s]+))");
  return std::regex_replace(std::regex_replace(uri, kUriPassword, "$1:***@"), kKeyPassword, "password=***");
}

void AppendCopyText(std::string& out, std::string_view v) {
  for (char ch : v) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += ch;
    }
  }
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    if (c_.Ok()) c_.Exec("ROLLBACK");
  } catch (const Failure&) {  // the connection is gone: the server rolled it back
  }
}

}  // namespace segwan::pg
