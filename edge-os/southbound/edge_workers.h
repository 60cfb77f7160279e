#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace segwan::controller {

// One worker per edge: the calls a task makes to its edge wait only for that edge. A frozen
// edge holds its own worker (and queue) and nobody else's. Tasks of one edge run in order;
// each edge's queue is bounded (Post refuses past kMaxQueued). A worker has a thread only
// while it has work (and `idle` after): a thousand quiet edges cost no thread. Thread-safe.
class EdgeWorkers {
 public:
  static constexpr size_t kMaxQueued = 32;
  explicit EdgeWorkers(std::chrono::milliseconds idle = std::chrono::seconds(5)) : idle_(idle) {}
  ~EdgeWorkers();
  EdgeWorkers(const EdgeWorkers&) = delete;
  EdgeWorkers& operator=(const EdgeWorkers&) = delete;

  // Queues `task` on `edge`'s worker (made on first use). False when its queue is full or
  // the workers are stopping.
  bool Post(const std::string& edge, std::function<void()> task);
  // Ends the worker of an edge that is gone, after its queued tasks.
  void Forget(const std::string& edge);
  // Workers that have a thread now.
  size_t Threads();
  // Waits for the running tasks to finish, drops the queued ones, ends every thread.
  void Stop();

 private:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> tasks;
    bool stop = false;
    bool running = false;  // a thread serves the queue
    std::thread thread;
  };
  static void Run(Worker* w, std::chrono::milliseconds idle);
  const std::chrono::milliseconds idle_;
  std::mutex mu_;  // guards workers_ and stopped_
  std::map<std::string, std::shared_ptr<Worker>> workers_;
  bool stopped_ = false;
};

}  // namespace segwan::controller
