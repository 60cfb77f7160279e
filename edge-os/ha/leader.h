#pragma once

// Which of the controllers sharing one PostgreSQL leads. The leader holds a session-level
// advisory lock on a connection of its own and writes who it is (segwan_leader) for the
// others; followers try the lock every `poll` and read who leads meanwhile.
//
// Split brain is impossible by construction: the lock belongs to one database session, and
// the leader checks that session every `check`, with an answer expected within `answer` on
// its own clock. When the session fails or does not answer, the leader is told at once and
// must stop acting (edge-os exits, and comes back as a follower). So a leader stops at most
// check + answer after its session ended, and a new leader waits that long (Grace()) after
// taking the lock before it acts: whatever freed the lock (the process died, an
// administrator ended the session, the server restarted), the old one has stopped by then.
// When the network between them fails, the server frees the lock only after its keepalives
// (set here to about 10 s), later still.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "segwan/result.h"

namespace segwan::pg {
class Connection;
}

namespace segwan::controller {

struct LeaderInfo {
  std::string id;    // the controller's name (host:port of its REST API unless told)
  std::string http;  // base URL of its REST API, for followers to forward to
  std::string grpc;  // its Registration address, for edges
  int64_t since_ms = 0;
  // Greater at each new leader; sent with the leader's calls to the edges, which refuse an
  // older epoch's (so a leader that lost the lead unawares cannot act on them).
  uint64_t epoch = 0;
};

class LeaderElection {
 public:
  struct Options {
    std::string uri;  // the shared store
    LeaderInfo self;
    std::chrono::milliseconds poll{500};
    std::chrono::milliseconds check{500};
    std::chrono::milliseconds answer{1000};
  };
  static Result<std::unique_ptr<LeaderElection>> Open(Options options);
  ~LeaderElection();
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  // Tries the lock every `poll` until this process holds it (true) or `stop` says so (false).
  // Meanwhile Leader() says who leads. A lost connection is reopened with backoff.
  bool Campaign(const std::function<bool()>& stop);
  // Who leads, as last read; nothing while nobody does (or not yet known).
  std::optional<LeaderInfo> Leader() const;
  bool leading() const;
  // How long a new leader waits before acting: the longest an old one may take to stop.
  std::chrono::milliseconds Grace() const { return o_.check + o_.answer; }
  // Leader only: checks the session in a thread of its own; calls `lost` once, at once, when
  // the session fails or does not answer in time.
  void Watch(std::function<void()> lost);

 private:
  explicit LeaderElection(Options o, std::unique_ptr<pg::Connection> c);
  bool TryLock();
  void ReadLeader();

  Options o_;
  std::unique_ptr<pg::Connection> c_;  // the lock's session: Campaign's thread, then Watch's
  mutable std::mutex mu_;              // guards leader_, leading_, stop_
  std::optional<LeaderInfo> leader_;
  bool leading_ = false;
  bool stop_ = false;
  std::thread watch_;
};

}  // namespace segwan::controller
