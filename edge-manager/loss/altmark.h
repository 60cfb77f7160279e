#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "edge-manager/ebpf/tc_filters.h"
#include "segwan/net.h"
#include "segwan/result.h"

struct altmark;  // the skeleton

namespace segwan::loss {

enum class Direction { kIngress, kEgress };  // this edge encapsulates the flow / decapsulates it

inline constexpr std::chrono::milliseconds kDefaultPeriod{10'000};

// One flow's counters by colour, summed over CPUs, since it was first monitored.
struct FlowCounters {
  uint64_t packets[2] = {};
  uint64_t bytes[2] = {};
  uint32_t active_colour = 0;     // ingress: the colour painted now
  uint64_t switched_at_ns = 0;    // ingress: TAI ns of the last switch
  uint64_t period_index = 0;      // ingress: switches so far
};

// The alternate-marking programs (bpf/altmark.bpf.c), loaded and attached at TC on the WAN
// interfaces: egress colours and counts the flows this edge encapsulates, ingress counts the
// marked flows it receives. Only the ingress side switches colours, every period, in a thread
// of its own. With a pin folder (on a bpffs), the flow tables and counters are pinned there
// and survive an agent restart: the engine picks its flows back up at Load. Neither copyable
// nor movable; destroying it detaches the programs (the pinned maps stay). Thread-safe.
class AltmarkEngine {
 public:
  static Result<std::unique_ptr<AltmarkEngine>> Load(const std::string& pin_dir);
  ~AltmarkEngine();
  AltmarkEngine(const AltmarkEngine&) = delete;
  AltmarkEngine& operator=(const AltmarkEngine&) = delete;

  Status Attach(const std::string& ifname);  // clsact egress (colour + count) and ingress (count)

  // `segments` first SID first, as in the route (1..16). Starting a flow again changes only
  // its period; its counters carry on.
  Status Start(const std::vector<IpAddress>& segments, Direction d,
               std::chrono::milliseconds period = kDefaultPeriod);
  Status Stop(const std::vector<IpAddress>& segments, Direction d);
  Result<FlowCounters> Read(const std::vector<IpAddress>& segments, Direction d);
  size_t flows() const;

 private:
  struct Flow {
    uint32_t slot = 0;
    uint32_t colour = 0;
    std::chrono::milliseconds period{0};
    std::chrono::steady_clock::time_point next_switch;
    uint64_t switched_at_ns = 0;
    uint64_t period_index = 0;
  };
  using Key = std::vector<uint8_t>;  // the flow key's bytes

  explicit AltmarkEngine(altmark* skel);
  void Recover();   // picks up flows from pinned maps
  void Switcher();  // flips ingress colours when their period is over
  Status WriteFlow(Direction d, const Key& key, const Flow& f);

  altmark* skel_;
  ebpf::TcFilters tc_;

  mutable std::mutex mu_;  // guards everything below and keeps the maps consistent with it
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;  // bumped when a deadline may have moved earlier
  std::map<Key, Flow> flows_[2];  // by direction
  std::set<uint32_t> free_slots_[2];
  std::thread switcher_;
};

}  // namespace segwan::loss
