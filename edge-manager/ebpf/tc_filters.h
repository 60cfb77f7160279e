#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "segwan/result.h"

namespace segwan::ebpf {

// BPF programs attached as direct-action filters on the clsact qdisc of interfaces, all under
// one handle and priority of the caller's: a restarted agent replaces its own filters (a
// crashed one's included) and never anybody else's. DetachAll (or destruction) removes them;
// the clsact qdisc stays, since other filters may hang on it. Thread-safe.
class TcFilters {
 public:
  explicit TcFilters(uint32_t handle_and_priority) : id_(handle_and_priority) {}
  ~TcFilters() { DetachAll(); }
  TcFilters(const TcFilters&) = delete;
  TcFilters& operator=(const TcFilters&) = delete;

  // Idempotent per (interface, direction).
  Status Attach(const std::string& ifname, bool egress, int prog_fd);
  void DetachAll();

 private:
  uint32_t id_;
  std::mutex mu_;  // guards hooks_
  std::vector<std::pair<int, bool>> hooks_;  // (ifindex, egress)
};

// A per-CPU map value read for every CPU: nothing when the lookup fails.
template <typename T>
std::optional<std::vector<T>> ReadPerCpu(const bpf_map* map, uint32_t key) {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<T> v(static_cast<size_t>(cpus > 0 ? cpus : 1));
  if (bpf_map__lookup_elem(map, &key, sizeof key, v.data(), v.size() * sizeof(T), 0) != 0) return std::nullopt;
  return v;
}

}  // namespace segwan::ebpf
