#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edge-manager/netlink/dataplane.h"
#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::edge {

enum class SliceMode { kVrf, kTable };
const char* SliceModeName(SliceMode m);

// A remote site of a slice: its prefixes are reached by encapsulating towards its SIDs.
struct RemoteSite {
  std::string name;
  std::vector<IpPrefix> prefixes;
  std::vector<IpAddress> segments;     // first SID first; the last is the remote decap SID
  std::vector<IpAddress> segments_v4;  // IPv4 prefixes (table mode: ends in the remote End.DX4)
  netlink::EncapMode encap_mode = netlink::EncapMode::kEncap;
  bool operator==(const RemoteSite&) const = default;
};

// The full desired state of one slice on this edge (validated: see api/ for the checks).
struct SliceSpec {
  std::string id;
  uint32_t table = 0;
  std::vector<std::string> lan_interfaces;
  std::vector<IpPrefix> lan_prefixes;
  std::optional<IpAddress> sid6;      // End.DT6
  std::optional<IpAddress> sid4;      // End.DT4 (vrf) / End.DX4 (table)
  std::optional<IpAddress> sid46;     // End.DT46 (vrf only)
  std::optional<IpAddress> nexthop4;  // End.DX4 next hop on the LAN (table mode)
  std::vector<RemoteSite> remotes;
  bool operator==(const SliceSpec&) const = default;
};

// The kernel objects a slice consists of on this edge.
struct SlicePlan {
  std::vector<netlink::Route> routes;
  std::vector<netlink::Rule> rules;
  std::string vrf;  // VRF device name in vrf mode
};

inline constexpr uint32_t kSliceRulePriority = 1000;
// The most slices one edge holds (each costs a table, rules and routes).
inline constexpr size_t kMaxSlices = 1024;
// The kernel looks up a freshly encapsulated packet's outer header with the LAN as input
// interface, so the slice rule would send it to the slice table. One rule per first SID, just
// before the slice rule, sends exactly those outer destinations to the main table.
inline constexpr uint32_t kUnderlayRulePriority = 999;
// Metric of the unreachable default that keeps a slice's traffic inside the slice.
inline constexpr uint32_t kIsolationMetric = 0xff000000;

struct ApplyCounts {
  uint32_t added = 0;
  uint32_t removed = 0;
};

// Owns the slices on this edge. Apply is declarative and converges the kernel to the plan:
// what is missing or different is (re)installed, what the slice no longer wants is removed,
// and what already matches is left alone (applying twice changes nothing). When the kernel
// refuses a step, the steps already taken are undone, so a failed Apply leaves the router as
// it was. Thread-safe.
class SliceManager {
 public:
  SliceManager(netlink::Dataplane* dp, SliceMode mode, std::string sid_device);

  // The agent's interface roles ("wan", "lan", "mgmt"), as configured. A slice may then only
  // take an interface configured as "lan" (when any is), and never the loopback, the SID
  // device, a VRF device, or a WAN or management interface; no prefix of a slice may cover an
  // address of those (a slice must not capture what the router itself sends or receives).
  void SetInterfaceRoles(std::map<std::string, std::string> roles);

  SliceMode mode() const { return mode_; }
  // Checks that need the router (interfaces exist, table and SIDs not used by another slice).
  Status Check(const SliceSpec& spec);
  Result<ApplyCounts> Apply(const SliceSpec& spec);
  Result<ApplyCounts> Remove(const std::string& id);
  std::vector<SliceSpec> Slices() const;
  // Pure: the objects `spec` needs given interface indexes and addresses.
  Result<SlicePlan> Plan(const SliceSpec& spec, const std::vector<netlink::Link>& links,
                         int sid_ifindex) const;

 private:
  // Routes and rules of ours that belong to `spec`'s table or are its SIDs.
  struct Installed {
    std::vector<netlink::Route> routes;
    std::vector<netlink::Rule> rules;
  };
  Result<Installed> InstalledFor(uint32_t table, const std::vector<IpAddress>& sids,
                                 const std::vector<std::string>& lans);
  Status CheckLocked(const SliceSpec& spec, const std::vector<netlink::Link>& links) const;
  // Refuses what would touch the router's own plumbing (see SetInterfaceRoles).
  Status CheckPlumbing(const SliceSpec& spec, const std::vector<netlink::Link>& links) const;

  netlink::Dataplane* dp_;
  SliceMode mode_;
  std::string sid_device_;
  mutable std::mutex mu_;  // guards slices_ and serialises changes to the kernel
  std::map<std::string, SliceSpec> slices_;
  std::map<std::string, std::string> roles_;  // guarded by mu_
};

}  // namespace segwan::edge
