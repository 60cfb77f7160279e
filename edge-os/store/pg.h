#pragma once

// A thin RAII layer over libpq for the controller's PostgreSQL store and leader election:
// one connection, statements with text parameters, COPY, and a failure that says what the
// server said. Throws pg::Failure (a std::runtime_error); the store turns that into a 503.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace segwan::pg {

struct Failure : std::runtime_error {
  Failure(const std::string& what, std::string sqlstate) : std::runtime_error(what), sqlstate(std::move(sqlstate)) {}
  std::string sqlstate;  // five characters when the server answered, "" when the connection failed
};

// Rows of a statement's answer, values as text (the wire's text format).
class Rows {
 public:
  explicit Rows(pg_result* r);
  Rows(Rows&&) noexcept;
  Rows& operator=(Rows&&) noexcept;
  ~Rows();
  int size() const;
  bool empty() const { return size() == 0; }
  bool null(int row, int col) const;
  std::string text(int row, int col) const;
  int64_t int64(int row, int col) const;
  uint64_t affected() const;  // rows an INSERT, UPDATE or DELETE touched

 private:
  pg_result* r_;
};

using Param = std::optional<std::string>;  // nullopt is SQL NULL

class Connection {
 public:
  // Opens `uri` (postgresql://... or a key=value string). Defaults a URI may override: a 5 s
  // connect timeout, TCP keepalives and a 10 s TCP user timeout (a peer that vanished is
  // noticed within seconds, not the kernel's 15 minutes), and per statement a 30 s timeout.
  // `settings` ("-c name=value ...") are more server settings for the session, kept across Reset().
  static std::unique_ptr<Connection> Open(const std::string& uri, const std::string& application, std::string* error,
                                          const std::string& settings = "");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Rows Exec(const std::string& sql, const std::vector<Param>& params = {});
  // Whether `sql` (no parameters) is answered without error within `timeout`: the wait is
  // this side's, whatever the network does. False also when the session is lost.
  bool AnswersWithin(const std::string& sql, std::chrono::milliseconds timeout);
  // COPY ... FROM STDIN with `data` in the text format (tab-separated lines).
  void CopyIn(const std::string& sql, std::string_view data);
  // False once the session is known lost (libpq's status, or a failure that says so).
  bool Ok() const;
  // Reconnects with the same parameters; false when the server cannot be reached.
  bool Reset();
  std::string LastError() const;  // libpq's last message, one line
  // The URI with its password replaced, for messages and logs.
  static std::string Redacted(const std::string& uri);

 private:
  explicit Connection(pg_conn* c) : c_(c) {}
  [[noreturn]] void Throw(pg_result* r, const std::string& what);
  pg_conn* c_;
  bool lost_ = false;  // a failure said the session is gone
};

// Escapes a value for COPY's text format (backslash, tab, newline, carriage return).
void AppendCopyText(std::string& out, std::string_view v);

// RAII transaction: BEGIN, COMMIT on Commit(), ROLLBACK when left without it.
class Transaction {
 public:
  explicit Transaction(Connection& c) : c_(c) { c_.Exec("BEGIN"); }
  ~Transaction();
  void Commit() {
    c_.Exec("COMMIT");
    done_ = true;
  }

 private:
  Connection& c_;
  bool done_ = false;
};

}  // namespace segwan::pg
