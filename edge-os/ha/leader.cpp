#include "edge-os/ha/leader.h"

#include "edge-os/store/pg.h"
#include "segwan/clock.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace {

constexpr const char* kLeaderLock = "7300003";

}  // namespace

Result<std::unique_ptr<LeaderElection>> LeaderElection::Open(Options options) {
  std::string why;
  // The server notices a vanished peer after its keepalives: idle 5 s, then 5 probes 1 s
  // apart, and unacknowledged data after 10 s. The leader's own check gives up much sooner.
  auto c = pg::Connection::Open(options.uri, "edge-os leader election", &why,
                                "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=5 "
                                "-c tcp_user_timeout=10000");
  if (!c) return Error{"cannot connect to the database " + pg::Connection::Redacted(options.uri) + ": " + why, "--store", 0};
  return std::unique_ptr<LeaderElection>(new LeaderElection(std::move(options), std::move(c)));
}

LeaderElection::LeaderElection(Options o, std::unique_ptr<pg::Connection> c) : o_(std::move(o)), c_(std::move(c)) {}

LeaderElection::~LeaderElection() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  if (watch_.joinable()) watch_.join();
}

bool LeaderElection::TryLock() {
  if (c_->Exec(std::string("SELECT pg_try_advisory_lock(") + kLeaderLock + ")").text(0, 0) != "t") return false;
  LeaderInfo me = o_.self;
  me.since_ms = NowUtcMs();
  pg::Transaction tx(*c_);
  me.epoch = static_cast<uint64_t>(c_->Exec("SELECT nextval('segwan_leader_epoch')").int64(0, 0));
  c_->Exec("DELETE FROM segwan_leader");
  c_->Exec("INSERT INTO segwan_leader (id, http, grpc, since_ms, epoch) VALUES ($1, $2, $3, $4, $5)",
           {me.id, me.http, me.grpc, std::to_string(me.since_ms), std::to_string(me.epoch)});
  c_->Exec("NOTIFY segwan_leader");
  tx.Commit();
  std::lock_guard lock(mu_);
  leader_ = me;
  leading_ = true;
  return true;
}

void LeaderElection::ReadLeader() {
  // A row is only as good as its writer's lock: nobody holds it, nobody leads.
  const auto held = c_->Exec(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $1::bigint",
      {kLeaderLock});
  const auto rows = c_->Exec("SELECT id, http, grpc, since_ms, epoch FROM segwan_leader");
  std::lock_guard lock(mu_);
  if (held.int64(0, 0) == 0 || rows.empty()) {
    leader_.reset();
    return;
  }
  leader_ = LeaderInfo{rows.text(0, 0), rows.text(0, 1), rows.text(0, 2), rows.int64(0, 3),
                       static_cast<uint64_t>(rows.int64(0, 4))};
}

bool LeaderElection::Campaign(const std::function<bool()>& stop) {
  auto backoff = o_.poll;
  std::string said;
  while (!stop()) {
    try {
      if (!c_->Ok() && !c_->Reset()) throw pg::Failure(c_->LastError(), "");
      if (TryLock()) {
        SEGWAN_LOG(kInfo, "leader") << o_.self.id << " leads now (epoch " << Leader()->epoch << ")";
        return true;
      }
      ReadLeader();
      backoff = o_.poll;
      said.clear();
    } catch (const std::exception& e) {
      if (said != e.what()) SEGWAN_LOG(kWarn, "leader") << "cannot take part in the election: " << e.what();
      said = e.what();
      std::lock_guard lock(mu_);
      leader_.reset();
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
    const auto until = std::chrono::steady_clock::now() + backoff;
    while (!stop() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::optional<LeaderInfo> LeaderElection::Leader() const {
  std::lock_guard lock(mu_);
  return leader_;
}

bool LeaderElection::leading() const {
  std::lock_guard lock(mu_);
  return leading_;
}

void LeaderElection::Watch(std::function<void()> lost) {
  watch_ = std::thread([this, lost = std::move(lost)] {
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stop_) return;
      }
      // Still our session, and still ours the lock (an administrator may have ended it).
      const bool ok = c_->AnswersWithin(
          std::string("SELECT 1 / count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND granted "
                      "AND classid = 0 AND objid = ") +
              kLeaderLock + " AND pid = pg_backend_pid()",  // not held: division by zero, an error
          o_.answer);
      if (!ok) {
        {
          std::lock_guard lock(mu_);
          leading_ = false;
          leader_.reset();
        }
        SEGWAN_LOG(kError, "leader") << o_.self.id << " lost its database session: it stops leading";
        lost();
        return;
      }
      std::this_thread::sleep_for(o_.check);
    }
  });
}

}  // namespace segwan::controller
