#pragma once

#include <map>

#include "edge-manager/slices/slice.h"
#include "segwan/result.h"
#include "segwan/v1/edge.pb.h"

namespace segwan::edge {

// Checks a slice request and turns it into the domain spec. Errors name the field as the
// request spells it: "slice.remotes[1].segments[0]: 'x' is not an IPv6 address".
Result<SliceSpec> SliceFromProto(const segwan::v1::Slice& pb);
segwan::v1::Slice SliceToProto(const SliceSpec& spec);

// A list of IPv6 SIDs, first first; errors name `field` or `field[i]`. 1..16 when required.
Result<std::vector<IpAddress>> SidList(const std::string& field,
                                       const google::protobuf::RepeatedPtrField<std::string>& in,
                                       bool required);

// Interface roles as configured on the agent (wan, lan, mgmt).
using InterfaceRoles = std::map<std::string, std::string>;
std::vector<segwan::v1::Interface> InterfacesToProto(const std::vector<netlink::Link>& links,
                                                     const InterfaceRoles& roles);

}  // namespace segwan::edge

#include "edge-manager/stamp/engine.h"

namespace segwan::edge {

// STAMP session parameters (the paper's ten plus count/duration, return path, padding),
// checked field by field ("params.interval_ms: ...").
Result<stamp::SenderSessionConfig> SenderFromProto(const segwan::v1::StampSessionParams& p);
Result<stamp::ReflectorSessionConfig> ReflectorFromProto(const segwan::v1::StampSessionParams& p);

}  // namespace segwan::edge
