#pragma once

// Pure encoders and decoders between the netlink domain types and rtnetlink messages. No
// sockets here: the bytes are what `ip` sends for the same object (see the golden tests).

#include <netlink/msg.h>

#include <memory>
#include <string>

#include "edge-manager/netlink/types.h"
#include "segwan/result.h"

namespace segwan::netlink {

struct NlMsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using NlMsg = std::unique_ptr<nl_msg, NlMsgDeleter>;

// RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE: idempotent add-or-update.
Result<NlMsg> EncodeRouteReplace(const Route& route);
// RTM_DELROUTE for the route's key (family, table, dst, priority).
Result<NlMsg> EncodeRouteDelete(const Route& route);
// RTM_NEWRULE (NLM_F_CREATE|NLM_F_EXCL) / RTM_DELRULE: `ip rule add iif IF lookup T pref P`.
Result<NlMsg> EncodeRuleAdd(const Rule& rule);
Result<NlMsg> EncodeRuleDelete(const Rule& rule);
// RTM_NEWLINK: `ip link add NAME type vrf table T`.
Result<NlMsg> EncodeVrfCreate(const std::string& name, uint32_t table);
// RTM_NEWLINK: `ip link add NAME type veth peer name PEER` (stand-in for dummy, see sid device).
Result<NlMsg> EncodeVethCreate(const std::string& name, const std::string& peer);
// RTM_NEWLINK: `ip link set dev IFINDEX [up|down] [master M|nomaster]`.
NlMsg EncodeLinkSet(int ifindex, std::optional<bool> up, std::optional<int> master);
// RTM_NEWADDR (replace) / RTM_DELADDR: `ip addr replace|del PREFIX dev IFINDEX` (host bits are
// the address, as on the command line).
Result<NlMsg> EncodeAddress(bool add, int ifindex, const IpPrefix& address);
// RTM_DELLINK by index.
NlMsg EncodeLinkDelete(int ifindex);

// Decoders for dumps. A message that is not the expected kind, or that carries something the
// agent does not model, decodes to an Error saying so.
Result<Route> DecodeRoute(const nlmsghdr* nlh);
Result<Rule> DecodeRule(const nlmsghdr* nlh);
Result<Link> DecodeLink(const nlmsghdr* nlh);
// RTM_NEWADDR: ifindex and prefix (host bits kept).
Result<std::pair<int, IpPrefix>> DecodeAddress(const nlmsghdr* nlh);

}  // namespace segwan::netlink
