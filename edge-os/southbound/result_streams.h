#pragma once

#include <atomic>
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

// Notification mode: one WatchStampResults stream per edge that sends delay probes, each on a
// thread of its own, so a frozen edge holds only its own stream. A stream that breaks is
// opened again with backoff, resuming after the last cursor stored; one that stays silent
// past `silence` (the agent sends at least once a second) is taken for half-open and
// cancelled. An edge whose agent does not know the RPC is left to polling. Thread-safe.
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
  void Stop();

 private:
  struct Stream {
    std::string edge;
    std::mutex mu;  // guards current, stop, kicked
    std::condition_variable cv;
    std::shared_ptr<ResultStream> current;
    bool stop = false;
    bool kicked = false;
    std::atomic<bool> up{false};
    std::atomic<bool> unsupported{false};
    std::atomic<bool> done{false};
    std::atomic<int64_t> last_batch_ms{0};  // steady clock
    std::thread thread;
  };
  void Run(Stream* s);
  void Watchdog();
  static void End(Stream& s);  // asks it to stop (does not join)

  Hooks hooks_;
  Options o_;
  std::mutex mu_;  // guards streams_, retired_, stop_
  std::map<std::string, std::unique_ptr<Stream>> streams_;
  std::vector<std::unique_ptr<Stream>> retired_;  // ending; joined once done
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread watchdog_;
};

}  // namespace segwan::controller
