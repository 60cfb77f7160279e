#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "edge-os/monitoring/ingest.h"
#include "edge-os/southbound/edge_client.h"

namespace segwan::controller {

// Notification mode: one WatchStampResults stream per edge that sends delay probes. Streams
// are driven by gRPC's threads (see ResultStream); one scheduler thread opens them, opens again
// with backoff those that broke (resuming after the last cursor stored) and cancels those silent
// past `silence` (the agent sends at least once a second: a frozen edge or a half-open
// connection). A frozen edge therefore holds nothing but its own stream. An edge whose agent
// does not know the RPC is left to polling. Thread-safe.
class ResultStreams {
 public:
  struct Hooks {
    // The edge's client, or null while it is not reachable.
    std::function<std::shared_ptr<EdgeClient>(const std::string&)> client;
    // Where to resume, and what to acknowledge after each batch: the stored cursor.
    std::function<ResultIngest::Cursor(const std::string&)> stored;
    std::function<void(const std::string&, const segwan::v1::StampResultBatch&)> batch;
    std::function<void(const std::string&, const std::string&)> failed;
  };
  struct Options {
    std::chrono::milliseconds silence{5000};
    std::chrono::milliseconds min_backoff{200};
    std::chrono::milliseconds max_backoff{2000};
    std::chrono::milliseconds ack_every{1000};
    std::chrono::milliseconds unsupported_retry{60000};
  };
  ResultStreams(Hooks hooks, Options o);
  ~ResultStreams();
  ResultStreams(const ResultStreams&) = delete;
  ResultStreams& operator=(const ResultStreams&) = delete;

  // Streams for exactly these edges: new ones start, the others end.
  void Want(const std::set<std::string>& edges);
  // The edge (re)registered: its stream, maybe half-open towards its previous life, is
  // dropped and opened again at once.
  void Kick(const std::string& edge);
  // The agent answered UNIMPLEMENTED: its results are polled.
  bool Unsupported(const std::string& edge);
  // Whether a stream of this edge is open and delivering.
  bool Up(const std::string& edge);
  // Streams open or opening (for tests and metrics).
  size_t Live();
  void Stop();

 private:
  struct Stream {
    bool wanted = true;
    uint64_t gen = 0;                       // of the stream open now, if `open`
    bool open = false;                      // a stream of `gen` has not ended yet
    std::shared_ptr<ResultStream> current;  // its handle (null for a moment while opening)
    bool reopen_now = false;                // kicked while open
    bool unsupported = false;
    bool up = false;
    bool delivered = false;
    int64_t next_ms = 0;  // when to open again (steady clock)
    int64_t last_batch_ms = 0;
    std::chrono::milliseconds backoff{0};
    ResultIngest::Cursor acked;
    int64_t last_ack_ms = 0;
  };
  void Scheduler();
  void Open(const std::string& edge, uint64_t gen);
  void OnBatch(const std::string& edge, uint64_t gen, const segwan::v1::StampResultBatch& batch);
  void OnDone(const std::string& edge, uint64_t gen, const Status& st);

  Hooks hooks_;
  Options o_;
  std::mutex mu_;  // guards everything below; never held across a stream or hook call
  std::condition_variable cv_;
  std::map<std::string, Stream> streams_;
  uint64_t next_gen_ = 0;
  size_t live_ = 0;  // streams whose `done` has not run yet
  bool stop_ = false;
  std::thread scheduler_;
};

}  // namespace segwan::controller
