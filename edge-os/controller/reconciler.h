#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "edge-os/devices/registry.h"
#include "edge-os/sessions/delay_sessions.h"
#include "edge-os/sessions/loss_sessions.h"
#include "edge-os/slices/slices.h"
#include "edge-os/southbound/edge_locks.h"

namespace segwan::controller {

// Makes an edge that (re)registers, or is enabled, converge to the intent: its slices, both
// ends of its delay sessions and its loss flows, with the slices the controller no longer has
// removed. A reconcile that cannot finish is tried again with backoff (0.5 s doubling to
// 30 s) until it does. Thread-safe; the scheduling is the caller's (Due, then Run on the
// edge's worker, then Finish).
class Reconciler {
 public:
  Reconciler(DeviceRegistry* devices, SliceService* slices, DelaySessions* sessions, LossSessions* loss,
             EdgeLocks* locks, std::function<void()> kick)
      : devices_(devices), slices_(slices), sessions_(sessions), loss_(loss), locks_(locks), kick_(std::move(kick)) {}

  void Enqueue(const std::string& device_id);  // at once, backoff reset
  std::chrono::steady_clock::time_point Next();
  std::vector<std::string> Due();  // marks them running
  void Finish(const std::string& device_id, bool done);
  // Converges one edge; false when it could not finish.
  bool Run(const std::string& device_id);

 private:
  struct State {
    std::chrono::steady_clock::time_point next_at;
    std::chrono::milliseconds backoff{500};
    bool running = false;
    bool again = false;  // asked for while running
  };
  DeviceRegistry* devices_;
  SliceService* slices_;
  DelaySessions* sessions_;
  LossSessions* loss_;
  EdgeLocks* locks_;
  std::function<void()> kick_;
  std::mutex mu_;
  std::map<std::string, State> due_;
};

}  // namespace segwan::controller
