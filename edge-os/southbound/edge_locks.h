#pragma once

#include <map>
#include <mutex>
#include <string>

namespace segwan::controller {

// One mutex per edge: the configuration calls to one edge (REST changes, reconciles) take
// turns; other edges' calls do not wait for them. Never held with another edge's lock.
class EdgeLocks {
 public:
  std::unique_lock<std::mutex> Lock(const std::string& device_id) {
    std::mutex* m;
    {
      std::lock_guard lock(mu_);
      m = &locks_[device_id];  // map nodes never move, and entries never go
    }
    return std::unique_lock<std::mutex>(*m);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::mutex> locks_;
};

}  // namespace segwan::controller
