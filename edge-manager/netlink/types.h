#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "segwan/net.h"

namespace segwan::netlink {

// rtm_protocol / FRA_PROTOCOL of everything the agent installs, so a dump tells ours apart
// from what the operator or other daemons configured.
inline constexpr uint8_t kProtoSegwan = 97;
inline constexpr uint32_t kTableMain = 254;

// seg6 lightweight tunnel modes (`ip route ... encap seg6 mode ...`).
enum class EncapMode {
  kEncap,     // H.Encaps: new outer IPv6 header with an SRH
  kEncapRed,  // H.Encaps.Red: the first SID only in the outer destination
  kInline,    // H.Insert: SRH inserted into the packet (IPv6 only)
};

struct Seg6Encap {
  EncapMode mode = EncapMode::kEncap;
  std::vector<IpAddress> segments;  // first segment first (the SRH stores them reversed)
  bool operator==(const Seg6Encap&) const = default;
};

// seg6local behaviours the agent installs (`ip route ... encap seg6local action ...`).
enum class Seg6Action : uint32_t {
  kEnd = 1,
  kEndX = 2,
  kEndDX6 = 5,
  kEndDX4 = 6,
  kEndDT6 = 7,
  kEndDT4 = 8,
  kEndDT46 = 16,
};
const char* Seg6ActionName(Seg6Action a);

struct Seg6Local {
  Seg6Action action = Seg6Action::kEnd;
  uint32_t table = 0;      // End.DT6 in table mode
  uint32_t vrf_table = 0;  // End.DT4 / End.DT6 / End.DT46 in VRF mode
  std::optional<IpAddress> nh4;  // End.DX4
  std::optional<IpAddress> nh6;  // End.X, End.DX6
  bool operator==(const Seg6Local&) const = default;
};

enum class RouteType : uint8_t { kUnicast = 1, kUnreachable = 7 };

struct Route {
  IpPrefix dst;  // its family is the route's family
  uint32_t table = kTableMain;
  RouteType type = RouteType::kUnicast;
  int oif = 0;  // ifindex; 0 = none
  std::optional<IpAddress> gateway;
  uint32_t priority = 0;  // metric; 0 = kernel default
  uint8_t protocol = kProtoSegwan;
  std::variant<std::monostate, Seg6Encap, Seg6Local> encap;

  int family() const { return dst.address.family; }
  // Routes are identified by (family, table, dst, priority): what `ip route replace` replaces.
  bool SameKey(const Route& o) const {
    return family() == o.family() && table == o.table && dst == o.dst && priority == o.priority;
  }
  bool operator==(const Route&) const = default;
  std::string ToString() const;  // as `ip route` would print it
};

struct Rule {
  int family = 0;  // AF_INET or AF_INET6
  uint32_t priority = 0;
  std::string iif;
  uint32_t table = 0;
  std::optional<IpPrefix> dst;  // `to PREFIX`; none = all
  uint8_t protocol = kProtoSegwan;
  bool operator==(const Rule&) const = default;
  std::string ToString() const;
};

struct Link {
  int ifindex = 0;
  std::string name;
  std::string kind;  // "veth", "vrf", ... (empty when the kernel does not say)
  bool up = false;
  bool loopback = false;  // IFF_LOOPBACK
  uint32_t mtu = 0;
  int master = 0;  // ifindex of the VRF/bridge it is enslaved to, 0 = none
  uint32_t vrf_table = 0;  // for kind "vrf"
  std::string mac;
  std::vector<IpPrefix> addresses;  // filled by the address dump (host bits kept)
};

}  // namespace segwan::netlink
