#include "edge-os/slices/planner.h"

#include <set>

namespace segwan::controller {

namespace pb = segwan::v1;

Result<IpAddress> SliceSid(const IpPrefix& locator, uint32_t number, uint16_t function) {
  if (locator.address.family != AF_INET6) return FieldError("locator", "must be an IPv6 prefix");
  if (locator.length > 96) return FieldError("locator", "must be /96 or shorter to hold SIDs");
  if (number == 0 || number > kMaxSliceNumber) return FieldError("number", "out of range");
  IpAddress a = locator.address;
  // the 16 bits after the prefix
  for (int i = 0; i < 16; ++i) {
    const int bit = locator.length + i;
    const bool set = (number >> (15 - i)) & 1;
    auto& byte = a.bytes[static_cast<size_t>(bit / 8)];
    const auto mask = static_cast<uint8_t>(0x80 >> (bit % 8));
    byte = set ? (byte | mask) : (byte & ~mask);
  }
  a.bytes[14] = static_cast<uint8_t>(function >> 8);
  a.bytes[15] = static_cast<uint8_t>(function & 0xff);
  return a;
}

std::optional<IpAddress> StampAddress(const Device& d) {
  auto loc = ParsePrefix(d.locator);
  if (!loc) return std::nullopt;
  for (const auto& i : d.interfaces) {
    for (const auto& a : i.addresses) {
      auto addr = ParseIp(a.substr(0, a.find('/')));  // "addr/len" as the edge reports it
      if (addr && loc->Contains(*addr)) return addr;
    }
  }
  return std::nullopt;
}

std::vector<std::string> PathWaypoints(const Slice& slice, const std::string& from,
                                       const std::string& to) {
  for (const auto& p : slice.paths) {
    if (p.from == from && p.to == to) return p.waypoints;
  }
  return {};
}

namespace {

struct EdgeSites {
  std::vector<std::string> lans;
  std::vector<IpPrefix> prefixes;
  std::optional<IpAddress> sid6, sid4;
  std::string nexthop4;
  bool vrf = false;
};

}  // namespace

Result<std::map<std::string, pb::Slice>> PlanSlice(const Slice& slice,
                                                   const std::map<std::string, Device>& devices) {
  std::map<std::string, EdgeSites> edges;  // by device id, in id order
  for (size_t k = 0; k < slice.sites.size(); ++k) {
    const auto& site = slice.sites[k];
    const std::string f = "sites[" + std::to_string(k) + "]";
    auto d = devices.find(site.device);
    if (d == devices.end()) return FieldError(f + ".device", "no device '" + site.device + "'");
    auto loc = ParsePrefix(d->second.locator);
    if (!loc) return FieldError(f + ".device", "device '" + site.device + "' reported no SID locator");
    const DeviceInterface* lan = nullptr;
    for (const auto& i : d->second.interfaces) {
      if (i.name == site.interface) lan = &i;
    }
    if (!lan) {
      return FieldError(f + ".interface", "device '" + site.device + "' has no interface '" + site.interface + "'");
    }
    // Only what the edge itself reports as a LAN can become a site: never its loopback, WAN,
    // management or SID devices (the edge refuses those too, as a second line of defence).
    if (lan->role != "lan") {
      return FieldError(f + ".interface", "'" + site.interface + "' of " + site.device + " is " +
                                              (lan->role.empty() ? "not a LAN interface" : "a " + lan->role + " interface, not a LAN"));
    }
    auto& e = edges[site.device];
    for (const auto& l : e.lans) {
      if (l == site.interface) return FieldError(f + ".interface", "listed twice");
    }
    e.lans.push_back(site.interface);
    for (const auto& a : lan->addresses) {
      auto p = ParsePrefix(a, true);
      if (p && !p->address.IsLinkLocal()) e.prefixes.push_back(*p);
    }
    e.vrf = d->second.slice_mode == "vrf";
    auto sid6 = SliceSid(*loc, slice.number, kFunctionDt6);
    if (!sid6) return FieldError(f + ".device", "locator " + d->second.locator + ": " + sid6.error().message);
    e.sid6 = *sid6;
    if (!site.nexthop4.empty()) {
      if (!ParseIpv4(site.nexthop4)) return FieldError(f + ".nexthop4", "'" + site.nexthop4 + "' is not an IPv4 address");
      if (!e.nexthop4.empty() && e.nexthop4 != site.nexthop4) {
        return FieldError(f + ".nexthop4", "differs from another site on the same device");
      }
      e.nexthop4 = site.nexthop4;
    }
    if (e.vrf || !e.nexthop4.empty()) e.sid4 = *SliceSid(*loc, slice.number, kFunctionDt4);
  }
  std::set<std::string> seen_pairs;
  for (size_t k = 0; k < slice.paths.size(); ++k) {
    const auto& p = slice.paths[k];
    const std::string f = "paths[" + std::to_string(k) + "]";
    if (!edges.count(p.from)) return FieldError(f + ".from", "'" + p.from + "' is not a device of this slice");
    if (!edges.count(p.to)) return FieldError(f + ".to", "'" + p.to + "' is not a device of this slice");
    if (p.from == p.to) return FieldError(f + ".to", "must differ from from");
    if (!seen_pairs.insert(p.from + ">" + p.to).second) return FieldError(f, "a second path for the same pair");
    if (p.waypoints.size() > kMaxWaypoints) {
      return FieldError(f + ".waypoints", "at most " + std::to_string(kMaxWaypoints) + " SIDs");
    }
    for (size_t w = 0; w < p.waypoints.size(); ++w) {
      if (!ParseIpv6(p.waypoints[w])) {
        return FieldError(f + ".waypoints[" + std::to_string(w) + "]", "'" + p.waypoints[w] + "' is not an IPv6 address");
      }
    }
  }

  std::map<std::string, pb::Slice> out;
  for (const auto& [id, e] : edges) {
    pb::Slice s;
    s.set_id(EdgeSliceId(slice));
    s.set_table(kSliceTableBase + slice.number);
    s.set_mode(e.vrf ? pb::SLICE_MODE_VRF : pb::SLICE_MODE_TABLE);
    for (const auto& l : e.lans) s.add_lan_interfaces(l);
    for (const auto& p : e.prefixes) s.add_lan_prefixes(p.ToString());
    auto* ls = s.mutable_local_sids();
    ls->set_sid6(e.sid6->ToString());
    if (e.sid4) {
      ls->set_sid4(e.sid4->ToString());
      if (!e.vrf) ls->set_nexthop4(e.nexthop4);
    }
    for (const auto& [rid, r] : edges) {
      if (rid == id) continue;
      auto* remote = s.add_remotes();
      remote->set_name(rid);
      const auto waypoints = PathWaypoints(slice, id, rid);
      for (const auto& w : waypoints) remote->add_segments(w);
      remote->add_segments(r.sid6->ToString());
      if (r.sid4) {
        for (const auto& w : waypoints) remote->add_segments_v4(w);
        remote->add_segments_v4(r.sid4->ToString());
      }
      for (const auto& p : r.prefixes) {
        if (p.address.family == AF_INET && !r.sid4) continue;
        remote->add_prefixes(p.ToString());
      }
    }
    out.emplace(id, std::move(s));
  }
  return out;
}

}  // namespace segwan::controller
