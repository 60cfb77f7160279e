#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/monitoring/stats.h"
#include "edge-os/store/store.h"
#include "segwan/clock.h"
#include "segwan/result.h"
#include "segwan/v1/edge.pb.h"

namespace segwan::controller {

// Cumulative delay histogram for /metrics (seconds, fixed buckets).
inline constexpr double kMetricBuckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                            0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
struct PromHistogram {
  uint64_t buckets[std::size(kMetricBuckets)] = {};
  uint64_t count = 0;
  double sum = 0;
  void Add(double seconds);
};
struct SessionMetrics {
  std::string session_id, tenant_id;
  PromHistogram direct, back;
};
struct IngestMetrics {
  uint64_t poll_errors = 0;
  uint64_t edge_records_dropped = 0;
  uint64_t store_pending_samples = 0;  // held while the store fails
  uint64_t store_dropped_samples = 0;  // dropped because the store failed too long
  uint64_t stream_batches = 0;         // notification-mode batches taken
  uint64_t stream_duplicates = 0;      // records a resumed stream sent again, ignored
  std::vector<SessionMetrics> sessions;
};

struct IngestOptions {
  int64_t aggregate_interval_ms = 30'000;
  int32_t tai_offset_s = 0;
  // Batches a failing store has not taken yet; past this the oldest go, counted.
  size_t max_pending_samples = 500'000;
  std::chrono::milliseconds flush_interval{100};
};

// Result ingest: turns the records edges send (polled or pushed) into samples, running
// statistics, closed intervals and counters, and writes them to the store in batches, one
// transaction per flush whatever the number of edges. In notification mode it also keeps,
// per edge, the result log it reads and the last cursor applied and stored: records a
// resumed stream sends again are ignored, and the stored cursor (written in the same
// transaction as the samples) is what the edge may forget and where a restarted controller
// resumes. Thread-safe.
class ResultIngest {
 public:
  ResultIngest(Store* store, IngestOptions o);
  ~ResultIngest();
  ResultIngest(const ResultIngest&) = delete;
  ResultIngest& operator=(const ResultIngest&) = delete;

  // ---- sessions
  // A session from the store: its counters, and its open interval fed back from the samples
  // stored after the last closed one.
  Status Restore(const DelaySession& s);
  Status RestoreCursors();
  void Add(const DelaySession& s);
  // Forgets a session: `forget_stored` runs while no flush is in flight (it deletes the
  // session's rows); when it fails, nothing changes.
  Status Remove(const std::string& id, const std::function<Status()>& forget_stored);
  // The edge lost the session and counts from 0 again: its numbers carry on from the highest.
  void Restarted(const std::string& id, bool sender_side);

  // ---- polling mode
  void Polled(const std::string& id, const Result<segwan::v1::GetStampSessionResultsResponse>& r);

  // Sees every session's new samples as they are taken (under the ingest's lock: it must be
  // quick and call nothing back). Set before the first result arrives.
  using Tap = std::function<void(const std::string& session_id, const std::vector<Sample>& samples)>;
  void SetTap(Tap tap) { tap_ = std::move(tap); }

  // ---- notification mode
  struct Cursor {
    uint64_t log_id = 0, cursor = 0;
  };
  Cursor Stored(const std::string& edge);  // what the edge may forget; where to resume
  void Streamed(const std::string& edge, const segwan::v1::StampResultBatch& batch);
  void StreamFailed(const std::string& edge, const std::string& error);
  // A deleted edge: its log position goes (the store forgets its cursor with the device).
  void ForgetEdge(const std::string& edge);

  // Closes the open intervals of these sessions whose end is `grace_ms` behind now.
  void CloseDue(const std::vector<std::string>& ids, int64_t now_ms, int64_t grace_ms);
  // Writes what waits in one transaction; what a failing store refuses waits for the next.
  Status Flush();
  void Start();  // a thread that flushes every flush_interval
  void Stop();   // flushes once more

  // ---- reads
  struct View {
    SessionCounters counters;
    std::string error;  // the last failure to fetch its results
  };
  std::optional<View> Get(const std::string& id) const;
  std::optional<IntervalAggregate> OpenInterval(const std::string& id) const;
  // A session's intervals ending after `since_ms`, oldest first, at most `limit`: the closed
  // ones (true: the open one last). A closed interval waits for its write: until it commits,
  // it is read from here (waiting or being written), and it is asked for here before the store
  // is read, each start counted once: one that commits in between is in both answers, never
  // in neither.
  Result<std::vector<std::pair<IntervalAggregate, bool>>> Intervals(const std::string& id, int64_t since_ms,
                                                                    size_t limit) const;
  IngestMetrics Metrics() const;
  int64_t UtcMs(const Sample& s) const { return TaiUtc{o_.tai_offset_s}.UtcMs(s.t1); }

 private:
  struct Session {
    DelaySession s;
    SessionCounters counters;
    std::unique_ptr<IntervalBuilder> builder;
    PromHistogram direct, back;
    std::string error;
  };
  struct EdgeLog {
    Cursor applied;  // in memory
    Cursor stored;   // committed with the samples
  };
  void Apply(Session& r, const segwan::v1::StampResult& rec, SessionBatch& b);  // under mu_
  SessionBatch& BatchOf(std::map<std::string, SessionBatch>& batches, const std::string& id);
  void Queue(std::map<std::string, SessionBatch> batches, std::optional<ResultCursor> cursor);  // under mu_

  Store* store_;
  const IngestOptions o_;
  std::mutex write_mu_;  // one flush at a time; Remove waits for it
  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, Session> sessions_;
  std::map<std::pair<std::string, uint32_t>, std::string> by_sender_ssid_;
  std::map<std::string, EdgeLog> logs_;
  Tap tap_;
  std::deque<SessionBatch> queued_;
  std::vector<std::pair<std::string, IntervalAggregate>> in_flight_closed_;  // by session, being written
  std::map<std::string, ResultCursor> queued_cursors_;
  size_t queued_samples_ = 0;
  uint64_t store_dropped_ = 0, poll_errors_ = 0, edge_dropped_ = 0, stream_batches_ = 0, duplicates_ = 0;
  bool store_failing_ = false;

  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread writer_;
};

}  // namespace segwan::controller
