#include "edge-manager/netlink/encode.h"

#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/lwtunnel.h>
#include <linux/rtnetlink.h>
#include <linux/seg6.h>
#include <linux/seg6_iptunnel.h>
#include <linux/seg6_local.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netlink/attr.h>

#include <cstring>
#include <sstream>

namespace segwan::netlink {

namespace {

constexpr int kReq = NLM_F_REQUEST | NLM_F_ACK;
// iproute2 puts a table id that fits in 8 bits in the header, others in RTA_TABLE/FRA_TABLE.
constexpr uint32_t kMaxHeaderTable = 255;
constexpr uint32_t kIpv6DefaultMetric = 1024;

NlMsg NewMsg(int type, int flags) { return NlMsg(nlmsg_alloc_simple(type, flags)); }

// Starts a nested attribute with exactly the type bits given (NLA_F_NESTED or not, as iproute2
// does for that attribute), to be closed with nla_nest_end.
nlattr* NestStart(nl_msg* m, int type) {
  nlattr* start = reinterpret_cast<nlattr*>(nlmsg_tail(nlmsg_hdr(m)));
  if (nla_put(m, type, 0, nullptr) < 0) return nullptr;
  return start;
}

void PutAddress(nl_msg* m, int type, const IpAddress& a) {
  nla_put(m, type, static_cast<int>(a.size()), a.bytes.data());
}

Status CheckRoute(const Route& r) {
  const int f = r.family();
  if (f != AF_INET && f != AF_INET6) return FieldError("dst", "family must be IPv4 or IPv6");
  if (r.table == 0) return FieldError("table", "must not be 0");
  if (r.gateway && r.gateway->family != f) {
    return FieldError("gateway", "family differs from the destination's");
  }
  if (const auto* e = std::get_if<Seg6Encap>(&r.encap)) {
    if (e->segments.empty() || e->segments.size() > 16) {
      return FieldError("segments", "must hold 1 to 16 SIDs");
    }
    for (const auto& s : e->segments) {
      if (s.family != AF_INET6) return FieldError("segments", "SIDs are IPv6 addresses");
    }
    if (e->mode == EncapMode::kInline && f != AF_INET6) {
      return FieldError("mode", "inline (H.Insert) needs an IPv6 route");
    }
  }
  if (const auto* l = std::get_if<Seg6Local>(&r.encap)) {
    if (f != AF_INET6) return FieldError("dst", "a SID is an IPv6 prefix");
    switch (l->action) {
      case Seg6Action::kEnd:
        break;
      case Seg6Action::kEndX:
      case Seg6Action::kEndDX6:
        if (!l->nh6 || l->nh6->family != AF_INET6) return FieldError("nh6", "an IPv6 next hop is required");
        break;
      case Seg6Action::kEndDX4:
        if (!l->nh4 || l->nh4->family != AF_INET) return FieldError("nh4", "an IPv4 next hop is required");
        break;
      case Seg6Action::kEndDT6:
        if ((l->table == 0) == (l->vrf_table == 0)) {
          return FieldError("table", "End.DT6 needs exactly one of table or vrftable");
        }
        break;
      case Seg6Action::kEndDT4:
      case Seg6Action::kEndDT46:
        if (l->vrf_table == 0) return FieldError("vrftable", "is required for this behaviour");
        break;
      default:
        return FieldError("action", "unsupported seg6local behaviour");
    }
  }
  return Status::Ok();
}

void PutSeg6Encap(nl_msg* m, const Seg6Encap& e) {
  const bool inline_mode = e.mode == EncapMode::kInline;
  // H.Insert keeps segments[0] free for the packet's original destination.
  const size_t n = e.segments.size() + (inline_mode ? 1 : 0);
  std::vector<uint8_t> buf(sizeof(int) + sizeof(ipv6_sr_hdr) + n * 16, 0);
  int mode = inline_mode ? SEG6_IPTUN_MODE_INLINE
             : e.mode == EncapMode::kEncapRed ? SEG6_IPTUN_MODE_ENCAP_RED
                                              : SEG6_IPTUN_MODE_ENCAP;
  std::memcpy(buf.data(), &mode, sizeof mode);
  auto* srh = reinterpret_cast<ipv6_sr_hdr*>(buf.data() + sizeof(int));
  srh->hdrlen = static_cast<uint8_t>(n * 2);
  srh->type = 4;  // IPV6_SRCRT_TYPE_4
  srh->segments_left = static_cast<uint8_t>(n - 1);
  srh->first_segment = static_cast<uint8_t>(n - 1);
  uint8_t* segs = buf.data() + sizeof(int) + sizeof(ipv6_sr_hdr);
  for (size_t i = 0; i < e.segments.size(); ++i) {  // reversed: the last SID is segments[0]
    std::memcpy(segs + 16 * (n - 1 - i), e.segments[i].bytes.data(), 16);
  }
  nlattr* nest = NestStart(m, RTA_ENCAP | NLA_F_NESTED);
  nla_put(m, SEG6_IPTUNNEL_SRH, static_cast<int>(buf.size()), buf.data());
  nla_nest_end(m, nest);
  nla_put_u16(m, RTA_ENCAP_TYPE, LWTUNNEL_ENCAP_SEG6);
}

void PutSeg6Local(nl_msg* m, const Seg6Local& l) {
  nlattr* nest = NestStart(m, RTA_ENCAP | NLA_F_NESTED);
  nla_put_u32(m, SEG6_LOCAL_ACTION, static_cast<uint32_t>(l.action));
  if (l.table) nla_put_u32(m, SEG6_LOCAL_TABLE, l.table);
  if (l.vrf_table) nla_put_u32(m, SEG6_LOCAL_VRFTABLE, l.vrf_table);
  if (l.nh4) PutAddress(m, SEG6_LOCAL_NH4, *l.nh4);
  if (l.nh6) PutAddress(m, SEG6_LOCAL_NH6, *l.nh6);
  nla_nest_end(m, nest);
  nla_put_u16(m, RTA_ENCAP_TYPE, LWTUNNEL_ENCAP_SEG6_LOCAL);
}

rtmsg RouteHeader(const Route& r) {
  rtmsg h{};
  h.rtm_family = static_cast<uint8_t>(r.family());
  h.rtm_dst_len = static_cast<uint8_t>(r.dst.length);
  h.rtm_table = r.table <= kMaxHeaderTable ? static_cast<uint8_t>(r.table) : uint8_t{RT_TABLE_UNSPEC};
  h.rtm_protocol = r.protocol;
  return h;
}

}  // namespace

const char* Seg6ActionName(Seg6Action a) {
  switch (a) {
    case Seg6Action::kEnd: return "End";
    case Seg6Action::kEndX: return "End.X";
    case Seg6Action::kEndDX6: return "End.DX6";
    case Seg6Action::kEndDX4: return "End.DX4";
    case Seg6Action::kEndDT6: return "End.DT6";
    case Seg6Action::kEndDT4: return "End.DT4";
    case Seg6Action::kEndDT46: return "End.DT46";
  }
  return "?";
}

std::string Route::ToString() const {
  std::ostringstream o;
  if (type == RouteType::kUnreachable) o << "unreachable ";
  o << dst.ToString();
  if (const auto* e = std::get_if<Seg6Encap>(&encap)) {
    o << " encap seg6 mode "
      << (e->mode == EncapMode::kEncap ? "encap" : e->mode == EncapMode::kEncapRed ? "encap.red" : "inline")
      << " segs " << e->segments.size() << " [";
    for (const auto& s : e->segments) o << " " << s.ToString();
    o << " ]";
  } else if (const auto* l = std::get_if<Seg6Local>(&encap)) {
    o << " encap seg6local action " << Seg6ActionName(l->action);
    if (l->table) o << " table " << l->table;
    if (l->vrf_table) o << " vrftable " << l->vrf_table;
    if (l->nh4) o << " nh4 " << l->nh4->ToString();
    if (l->nh6) o << " nh6 " << l->nh6->ToString();
  }
  if (gateway) o << " via " << gateway->ToString();
  if (oif) {
    char name[IF_NAMESIZE] = {};
    o << " dev " << (if_indextoname(static_cast<unsigned>(oif), name) ? name : std::to_string(oif));
  }
  if (table != kTableMain) o << " table " << table;
  if (priority) o << " metric " << priority;
  return o.str();
}

std::string Rule::ToString() const {
  std::ostringstream o;
  o << (family == AF_INET6 ? "-6 " : "-4 ") << priority << ": from all";
  if (dst) o << " to " << dst->ToString();
  o << " iif " << iif << " lookup " << table;
  return o.str();
}

Result<NlMsg> EncodeRouteReplace(const Route& r) {
  if (auto st = CheckRoute(r); !st) return st.error();
  NlMsg m = NewMsg(RTM_NEWROUTE, kReq | NLM_F_CREATE | NLM_F_REPLACE);
  rtmsg h = RouteHeader(r);
  h.rtm_type = static_cast<uint8_t>(r.type);
  // What iproute2 does: IPv4 routes without a gateway are link scope, everything else universe.
  h.rtm_scope = (r.family() == AF_INET && !r.gateway && r.type == RouteType::kUnicast)
                    ? RT_SCOPE_LINK
                    : RT_SCOPE_UNIVERSE;
  nlmsg_append(m.get(), &h, sizeof h, NLMSG_ALIGNTO);
  if (r.table > kMaxHeaderTable) nla_put_u32(m.get(), RTA_TABLE, r.table);
  PutAddress(m.get(), RTA_DST, r.dst.address);
  if (r.gateway) PutAddress(m.get(), RTA_GATEWAY, *r.gateway);
  if (const auto* e = std::get_if<Seg6Encap>(&r.encap)) PutSeg6Encap(m.get(), *e);
  if (const auto* l = std::get_if<Seg6Local>(&r.encap)) PutSeg6Local(m.get(), *l);
  if (r.priority) nla_put_u32(m.get(), RTA_PRIORITY, r.priority);
  if (r.oif) nla_put_u32(m.get(), RTA_OIF, static_cast<uint32_t>(r.oif));
  return m;
}

Result<NlMsg> EncodeRouteDelete(const Route& r) {
  if (r.family() != AF_INET && r.family() != AF_INET6) return FieldError("dst", "bad family");
  NlMsg m = NewMsg(RTM_DELROUTE, kReq);
  rtmsg h = RouteHeader(r);
  h.rtm_scope = RT_SCOPE_NOWHERE;  // match any scope
  nlmsg_append(m.get(), &h, sizeof h, NLMSG_ALIGNTO);
  if (r.table > kMaxHeaderTable) nla_put_u32(m.get(), RTA_TABLE, r.table);
  PutAddress(m.get(), RTA_DST, r.dst.address);
  if (r.priority) nla_put_u32(m.get(), RTA_PRIORITY, r.priority);
  return m;
}

static Result<NlMsg> EncodeRule(const Rule& r, int type, int flags) {
  if (r.family != AF_INET && r.family != AF_INET6) return FieldError("family", "IPv4 or IPv6");
  if (r.iif.empty() || r.iif.size() >= IF_NAMESIZE) return FieldError("iif", "bad interface name");
  if (r.table == 0) return FieldError("table", "must not be 0");
  NlMsg m = NewMsg(type, kReq | flags);
  if (r.dst && r.dst->address.family != r.family) return FieldError("dst", "family differs from the rule's");
  fib_rule_hdr h{};
  h.family = static_cast<uint8_t>(r.family);
  if (r.dst) h.dst_len = static_cast<uint8_t>(r.dst->length);
  h.table = r.table <= kMaxHeaderTable ? static_cast<uint8_t>(r.table) : uint8_t{RT_TABLE_UNSPEC};
  h.action = FR_ACT_TO_TBL;
  nlmsg_append(m.get(), &h, sizeof h, NLMSG_ALIGNTO);
  if (r.dst) PutAddress(m.get(), FRA_DST, r.dst->address);
  nla_put_string(m.get(), FRA_IIFNAME, r.iif.c_str());
  if (r.priority) nla_put_u32(m.get(), FRA_PRIORITY, r.priority);
  if (r.table > kMaxHeaderTable) nla_put_u32(m.get(), FRA_TABLE, r.table);
  nla_put_u8(m.get(), FRA_PROTOCOL, r.protocol);
  return m;
}

Result<NlMsg> EncodeRuleAdd(const Rule& r) {
  return EncodeRule(r, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
}
Result<NlMsg> EncodeRuleDelete(const Rule& r) { return EncodeRule(r, RTM_DELRULE, 0); }

static Status CheckLinkName(const std::string& name) {
  if (name.empty() || name.size() >= IF_NAMESIZE) return FieldError("name", "bad interface name");
  return Status::Ok();
}

Result<NlMsg> EncodeVrfCreate(const std::string& name, uint32_t table) {
  if (auto st = CheckLinkName(name); !st) return st.error();
  if (table == 0) return FieldError("table", "must not be 0");
  NlMsg m = NewMsg(RTM_NEWLINK, kReq | NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO);
  nla_put_string(m.get(), IFLA_IFNAME, name.c_str());
  nlattr* info = NestStart(m.get(), IFLA_LINKINFO);
  nla_put(m.get(), IFLA_INFO_KIND, 3, "vrf");  // no NUL, as iproute2 sends it
  nlattr* data = NestStart(m.get(), IFLA_INFO_DATA);
  nla_put_u32(m.get(), IFLA_VRF_TABLE, table);
  nla_nest_end(m.get(), data);
  nla_nest_end(m.get(), info);
  return m;
}

Result<NlMsg> EncodeVethCreate(const std::string& name, const std::string& peer) {
  if (auto st = CheckLinkName(name); !st) return st.error();
  if (auto st = CheckLinkName(peer); !st) return FieldError("peer", st.error().message);
  NlMsg m = NewMsg(RTM_NEWLINK, kReq | NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO);
  nla_put_string(m.get(), IFLA_IFNAME, name.c_str());
  nlattr* info = NestStart(m.get(), IFLA_LINKINFO);
  nla_put(m.get(), IFLA_INFO_KIND, 4, "veth");
  nlattr* data = NestStart(m.get(), IFLA_INFO_DATA);
  nlattr* p = NestStart(m.get(), VETH_INFO_PEER);
  ifinfomsg peer_ifi{};
  nlmsg_append(m.get(), &peer_ifi, sizeof peer_ifi, NLMSG_ALIGNTO);
  nla_put_string(m.get(), IFLA_IFNAME, peer.c_str());
  nla_nest_end(m.get(), p);
  nla_nest_end(m.get(), data);
  nla_nest_end(m.get(), info);
  return m;
}

NlMsg EncodeLinkSet(int ifindex, std::optional<bool> up, std::optional<int> master) {
  NlMsg m = NewMsg(RTM_NEWLINK, kReq);
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  if (up) {
    ifi.ifi_change = IFF_UP;
    ifi.ifi_flags = *up ? IFF_UP : 0;
  }
  nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO);
  if (master) nla_put_u32(m.get(), IFLA_MASTER, static_cast<uint32_t>(*master));
  return m;
}

Result<NlMsg> EncodeAddress(bool add, int ifindex, const IpPrefix& a) {
  if (ifindex <= 0) return FieldError("dev", "no such interface");
  const int f = a.address.family;
  if (f != AF_INET && f != AF_INET6) return FieldError("address", "IPv4 or IPv6");
  NlMsg m = add ? NewMsg(RTM_NEWADDR, kReq | NLM_F_CREATE | NLM_F_REPLACE) : NewMsg(RTM_DELADDR, kReq);
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(f);
  ifa.ifa_prefixlen = static_cast<uint8_t>(a.length);
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  nlmsg_append(m.get(), &ifa, sizeof ifa, NLMSG_ALIGNTO);
  PutAddress(m.get(), IFA_LOCAL, a.address);
  PutAddress(m.get(), IFA_ADDRESS, a.address);
  return m;
}

NlMsg EncodeLinkDelete(int ifindex) {
  NlMsg m = NewMsg(RTM_DELLINK, kReq);
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO);
  return m;
}

// ---- decoders ---------------------------------------------------------------------------

static std::optional<IpAddress> AttrAddress(const nlattr* a, int family) {
  if (!a) return std::nullopt;
  IpAddress ip;
  ip.family = family;
  if (nla_len(a) != static_cast<int>(ip.size())) return std::nullopt;
  std::memcpy(ip.bytes.data(), nla_data(a), ip.size());
  return ip;
}

static Result<Seg6Encap> DecodeSeg6(nlattr* encap) {
  nlattr* tb[SEG6_IPTUNNEL_MAX + 1] = {};
  if (nla_parse_nested(tb, SEG6_IPTUNNEL_MAX, encap, nullptr) < 0 || !tb[SEG6_IPTUNNEL_SRH]) {
    return Error{"seg6 encap without SRH", "encap", 0};
  }
  const int len = nla_len(tb[SEG6_IPTUNNEL_SRH]);
  const auto* p = static_cast<const uint8_t*>(nla_data(tb[SEG6_IPTUNNEL_SRH]));
  if (len < static_cast<int>(sizeof(int) + sizeof(ipv6_sr_hdr))) {
    return Error{"seg6 SRH too short", "encap", 0};
  }
  int mode;
  std::memcpy(&mode, p, sizeof mode);
  const auto* srh = reinterpret_cast<const ipv6_sr_hdr*>(p + sizeof(int));
  const size_t n = srh->first_segment + 1u;
  if (sizeof(int) + sizeof(ipv6_sr_hdr) + n * 16 > static_cast<size_t>(len)) {
    return Error{"seg6 SRH segment list overruns the attribute", "encap", 0};
  }
  Seg6Encap e;
  switch (mode) {
    case SEG6_IPTUN_MODE_INLINE: e.mode = EncapMode::kInline; break;
    case SEG6_IPTUN_MODE_ENCAP: e.mode = EncapMode::kEncap; break;
    case SEG6_IPTUN_MODE_ENCAP_RED: e.mode = EncapMode::kEncapRed; break;
    default: return Error{"unsupported seg6 mode " + std::to_string(mode), "encap", 0};
  }
  const uint8_t* segs = p + sizeof(int) + sizeof(ipv6_sr_hdr);
  const size_t first = e.mode == EncapMode::kInline ? 1 : 0;  // skip the inline DA slot
  for (size_t i = n; i-- > first;) {
    IpAddress a;
    a.family = AF_INET6;
    std::memcpy(a.bytes.data(), segs + 16 * i, 16);
    e.segments.push_back(a);
  }
  return e;
}

static Result<Seg6Local> DecodeSeg6Local(nlattr* encap) {
  nlattr* tb[SEG6_LOCAL_MAX + 1] = {};
  if (nla_parse_nested(tb, SEG6_LOCAL_MAX, encap, nullptr) < 0 || !tb[SEG6_LOCAL_ACTION]) {
    return Error{"seg6local without action", "encap", 0};
  }
  Seg6Local l;
  const uint32_t action = nla_get_u32(tb[SEG6_LOCAL_ACTION]);
  switch (action) {
    case 1: case 2: case 5: case 6: case 7: case 8: case 16:
      l.action = static_cast<Seg6Action>(action);
      break;
    default:
      return Error{"unsupported seg6local action " + std::to_string(action), "encap", 0};
  }
  if (tb[SEG6_LOCAL_TABLE]) l.table = nla_get_u32(tb[SEG6_LOCAL_TABLE]);
  if (tb[SEG6_LOCAL_VRFTABLE]) l.vrf_table = nla_get_u32(tb[SEG6_LOCAL_VRFTABLE]);
  l.nh4 = AttrAddress(tb[SEG6_LOCAL_NH4], AF_INET);
  l.nh6 = AttrAddress(tb[SEG6_LOCAL_NH6], AF_INET6);
  return l;
}

Result<Route> DecodeRoute(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWROUTE) return Error{"not a route message", "", 0};
  auto* hdr = static_cast<rtmsg*>(nlmsg_data(const_cast<nlmsghdr*>(nlh)));
  nlattr* tb[RTA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(nlh), sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) {
    return Error{"malformed route message", "", 0};
  }
  if (hdr->rtm_family != AF_INET && hdr->rtm_family != AF_INET6) {
    return Error{"route family not IPv4/IPv6", "", 0};
  }
  if (tb[RTA_MULTIPATH]) return Error{"multipath routes are not modelled", "", 0};
  Route r;
  r.dst.address.family = hdr->rtm_family;
  r.dst.length = hdr->rtm_dst_len;
  if (tb[RTA_DST]) {
    auto a = AttrAddress(tb[RTA_DST], hdr->rtm_family);
    if (!a) return Error{"bad RTA_DST", "", 0};
    r.dst.address = *a;
  }
  r.table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : hdr->rtm_table;
  r.protocol = hdr->rtm_protocol;
  r.type = hdr->rtm_type == RTN_UNREACHABLE ? RouteType::kUnreachable : RouteType::kUnicast;
  if (hdr->rtm_type != RTN_UNICAST && hdr->rtm_type != RTN_UNREACHABLE) {
    return Error{"route type " + std::to_string(hdr->rtm_type) + " is not modelled", "", 0};
  }
  if (tb[RTA_OIF]) r.oif = static_cast<int>(nla_get_u32(tb[RTA_OIF]));
  if (tb[RTA_PRIORITY]) r.priority = nla_get_u32(tb[RTA_PRIORITY]);
  // The kernel reports its defaults where a request left things out: IPv6 metric 1024
  // (IP6_RT_PRIO_USER) and `dev lo` on unreachable routes. Map them back to "not given" so a
  // dump compares equal to the route that was asked for.
  if (r.family() == AF_INET6 && r.priority == kIpv6DefaultMetric) r.priority = 0;
  if (r.type == RouteType::kUnreachable) r.oif = 0;
  r.gateway = AttrAddress(tb[RTA_GATEWAY], hdr->rtm_family);
  if (tb[RTA_ENCAP] && tb[RTA_ENCAP_TYPE]) {
    const uint16_t type = nla_get_u16(tb[RTA_ENCAP_TYPE]);
    if (type == LWTUNNEL_ENCAP_SEG6) {
      auto e = DecodeSeg6(tb[RTA_ENCAP]);
      if (!e) return e.error();
      r.encap = *e;
    } else if (type == LWTUNNEL_ENCAP_SEG6_LOCAL) {
      auto l = DecodeSeg6Local(tb[RTA_ENCAP]);
      if (!l) return l.error();
      r.encap = *l;
    } else {
      return Error{"encap type " + std::to_string(type) + " is not modelled", "", 0};
    }
  }
  return r;
}

Result<Rule> DecodeRule(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWRULE) return Error{"not a rule message", "", 0};
  auto* hdr = static_cast<fib_rule_hdr*>(nlmsg_data(const_cast<nlmsghdr*>(nlh)));
  nlattr* tb[FRA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(nlh), sizeof(fib_rule_hdr), tb, FRA_MAX, nullptr) < 0) {
    return Error{"malformed rule message", "", 0};
  }
  Rule r;
  r.family = hdr->family;
  r.table = tb[FRA_TABLE] ? nla_get_u32(tb[FRA_TABLE]) : hdr->table;
  if (tb[FRA_PRIORITY]) r.priority = nla_get_u32(tb[FRA_PRIORITY]);
  if (tb[FRA_IIFNAME]) r.iif = nla_get_string(tb[FRA_IIFNAME]);
  r.protocol = tb[FRA_PROTOCOL] ? nla_get_u8(tb[FRA_PROTOCOL]) : 0;
  if (tb[FRA_DST]) {
    auto a = AttrAddress(tb[FRA_DST], hdr->family);
    if (!a) return Error{"bad FRA_DST", "", 0};
    r.dst = IpPrefix{*a, hdr->dst_len};
  }
  return r;
}

Result<Link> DecodeLink(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWLINK) return Error{"not a link message", "", 0};
  auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(const_cast<nlmsghdr*>(nlh)));
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(nlh), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) {
    return Error{"malformed link message", "", 0};
  }
  Link l;
  l.ifindex = ifi->ifi_index;
  l.up = ifi->ifi_flags & IFF_UP;
  l.loopback = ifi->ifi_flags & IFF_LOOPBACK;
  if (tb[IFLA_IFNAME]) l.name = nla_get_string(tb[IFLA_IFNAME]);
  if (tb[IFLA_MTU]) l.mtu = nla_get_u32(tb[IFLA_MTU]);
  if (tb[IFLA_MASTER]) l.master = static_cast<int>(nla_get_u32(tb[IFLA_MASTER]));
  if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) {
    const auto* b = static_cast<const uint8_t*>(nla_data(tb[IFLA_ADDRESS]));
    char mac[18];
    std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    l.mac = mac;
  }
  if (tb[IFLA_LINKINFO]) {
    nlattr* info[IFLA_INFO_MAX + 1] = {};
    if (nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) == 0) {
      if (info[IFLA_INFO_KIND]) l.kind = nla_get_string(info[IFLA_INFO_KIND]);
      if (l.kind == "vrf" && info[IFLA_INFO_DATA]) {
        nlattr* vrf[IFLA_VRF_MAX + 1] = {};
        if (nla_parse_nested(vrf, IFLA_VRF_MAX, info[IFLA_INFO_DATA], nullptr) == 0 &&
            vrf[IFLA_VRF_TABLE]) {
          l.vrf_table = nla_get_u32(vrf[IFLA_VRF_TABLE]);
        }
      }
    }
  }
  return l;
}

Result<std::pair<int, IpPrefix>> DecodeAddress(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWADDR) return Error{"not an address message", "", 0};
  auto* ifa = static_cast<ifaddrmsg*>(nlmsg_data(const_cast<nlmsghdr*>(nlh)));
  nlattr* tb[IFA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(nlh), sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) {
    return Error{"malformed address message", "", 0};
  }
  nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  auto ip = AttrAddress(a, ifa->ifa_family);
  if (!ip) return Error{"address message without an address", "", 0};
  return std::make_pair(static_cast<int>(ifa->ifa_index), IpPrefix{*ip, ifa->ifa_prefixlen});
}

}  // namespace segwan::netlink
