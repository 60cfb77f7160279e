#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "edge-os/controller/model.h"
#include "segwan/net.h"
#include "segwan/result.h"
#include "segwan/v1/edge.pb.h"

namespace segwan::controller {

// Routing table of slice number N on every edge: kSliceTableBase + N (never 253..255).
inline constexpr uint32_t kSliceTableBase = 1000;
inline constexpr uint32_t kMaxSliceNumber = 0xffff;
// SID functions (last 16 bits of a SID) of the decapsulation behaviours.
inline constexpr uint16_t kFunctionDt6 = 0xd6;
inline constexpr uint16_t kFunctionDt4 = 0xd4;
inline constexpr size_t kMaxWaypoints = 15;  // + the destination SID = 16

// The SID of `function` for slice `number` in `locator`: the locator's bits, then the slice
// number in the 16 bits after the prefix, then the function in the last 16 bits
// (fc00:0:a::/48, slice 3, End.DT6 -> fc00:0:a:3::d6). The locator must be at most /96.
Result<IpAddress> SliceSid(const IpPrefix& locator, uint32_t number, uint16_t function);

// The address STAMP uses on a device: its first address inside its locator (a loopback in
// practice), so that probes travel the same SRv6 underlay as the slice's traffic.
std::optional<IpAddress> StampAddress(const Device& d);

// What a slice becomes on each of its edges. Pure: the same slice and devices give the same
// messages. Errors name the REST field ("sites[1].interface", "paths[0].waypoints[2]").
//
// Per edge: the slice's table, its LAN interfaces and their prefixes (read from the interface
// addresses the edge reported), decapsulation SIDs from its locator (End.DT6; IPv4 through
// End.DT4 in vrf mode, End.DX4 in table mode when the site names its IPv4 next hop), and one
// remote per other edge of the slice: that edge's prefixes behind an H.Encaps SID list made of
// the pinned waypoints of this pair, if any, then the remote decapsulation SID. IPv4 prefixes
// of a remote without an IPv4 SID are left out (IPv6 still flows).
Result<std::map<std::string, segwan::v1::Slice>> PlanSlice(const Slice& slice,
                                                           const std::map<std::string, Device>& devices);

// The SID list (first segment first) STAMP packets of a session take from `from` to `to`:
// the pinned waypoints of that pair; the destination is the peer's STAMP address.
std::vector<std::string> PathWaypoints(const Slice& slice, const std::string& from,
                                       const std::string& to);

// The slice id an edge knows: the controller's id (already [a-z0-9-]).
inline std::string EdgeSliceId(const Slice& s) { return s.id; }

}  // namespace segwan::controller
