#include "edge-manager/api/convert.h"

#include <net/if.h>

#include <set>

namespace segwan::edge {

namespace pb = segwan::v1;

namespace {

constexpr size_t kMaxSegments = 16;

std::string Idx(const std::string& field, int i) { return field + "[" + std::to_string(i) + "]"; }

Result<IpAddress> Sid(const std::string& field, const std::string& text) {
  auto a = ParseIpv6(text);
  if (!a) return FieldError(field, "'" + text + "' is not an IPv6 address");
  return *a;
}

Result<std::optional<IpAddress>> OptionalSid(const std::string& field, const std::string& text) {
  if (text.empty()) return std::optional<IpAddress>();
  auto a = Sid(field, text);
  if (!a) return a.error();
  return std::optional<IpAddress>(*a);
}


Result<std::vector<IpPrefix>> Prefixes(const std::string& field,
                                       const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<IpPrefix> out;
  for (int i = 0; i < in.size(); ++i) {
    auto p = ParsePrefix(in[i]);
    if (!p) {
      return FieldError(Idx(field, i), "'" + in[i] + "' is not a prefix (address/length, no host bits)");
    }
    out.push_back(*p);
  }
  return out;
}

}  // namespace

Result<std::vector<IpAddress>> SidList(const std::string& field,
                                       const google::protobuf::RepeatedPtrField<std::string>& in,
                                       bool required) {
  if (in.empty() && !required) return std::vector<IpAddress>{};
  if (in.empty() || in.size() > static_cast<int>(kMaxSegments)) {
    return FieldError(field, "must hold 1 to 16 SIDs, has " + std::to_string(in.size()));
  }
  std::vector<IpAddress> out;
  for (int i = 0; i < in.size(); ++i) {
    auto a = Sid(Idx(field, i), in[i]);
    if (!a) return a.error();
    out.push_back(*a);
  }
  return out;
}

Result<SliceSpec> SliceFromProto(const pb::Slice& in) {
  SliceSpec s;
  s.id = in.id();
  if (!IsValidIdentifier(s.id, 32)) return FieldError("slice.id", "must match [a-z0-9-]{1,32}");
  s.table = in.table();
  if (s.table == 0 || (s.table >= 253 && s.table <= 255)) {
    return FieldError("slice.table", "must be 1..2^32-1 and not 253-255 (default, main, local)");
  }
  if (in.lan_interfaces().empty()) return FieldError("slice.lan_interfaces", "at least one is required");
  std::set<std::string> seen;
  for (int i = 0; i < in.lan_interfaces_size(); ++i) {
    const auto& n = in.lan_interfaces(i);
    if (n.empty() || n.size() >= IF_NAMESIZE || n.find_first_of("/ :") != std::string::npos) {
      return FieldError(Idx("slice.lan_interfaces", i), "'" + n + "' is not an interface name");
    }
    if (!seen.insert(n).second) return FieldError(Idx("slice.lan_interfaces", i), n + " is listed twice");
    s.lan_interfaces.push_back(n);
  }
  auto lan = Prefixes("slice.lan_prefixes", in.lan_prefixes());
  if (!lan) return lan.error();
  s.lan_prefixes = *lan;

  const auto& ls = in.local_sids();
  auto sid6 = OptionalSid("slice.local_sids.sid6", ls.sid6());
  if (!sid6) return sid6.error();
  auto sid4 = OptionalSid("slice.local_sids.sid4", ls.sid4());
  if (!sid4) return sid4.error();
  auto sid46 = OptionalSid("slice.local_sids.sid46", ls.sid46());
  if (!sid46) return sid46.error();
  s.sid6 = *sid6;
  s.sid4 = *sid4;
  s.sid46 = *sid46;
  if (!s.sid6 && !s.sid4 && !s.sid46) {
    return FieldError("slice.local_sids", "at least one decapsulation SID is required");
  }
  if (s.sid6 && s.sid4 && *s.sid6 == *s.sid4) {
    return FieldError("slice.local_sids.sid4", "must differ from sid6");
  }
  if (!ls.nexthop4().empty()) {
    auto nh = ParseIpv4(ls.nexthop4());
    if (!nh) return FieldError("slice.local_sids.nexthop4", "'" + ls.nexthop4() + "' is not an IPv4 address");
    s.nexthop4 = *nh;
  }
  for (int i = 0; i < in.remotes_size(); ++i) {
    const auto& r = in.remotes(i);
    const std::string f = Idx("slice.remotes", i);
    RemoteSite site;
    site.name = r.name();
    auto prefixes = Prefixes(f + ".prefixes", r.prefixes());
    if (!prefixes) return prefixes.error();
    if (prefixes->empty()) return FieldError(f + ".prefixes", "at least one prefix is required");
    site.prefixes = *prefixes;
    auto segs = SidList(f + ".segments", r.segments(), true);
    if (!segs) return segs.error();
    site.segments = *segs;
    auto segs4 = SidList(f + ".segments_v4", r.segments_v4(), false);
    if (!segs4) return segs4.error();
    site.segments_v4 = *segs4;
    switch (r.encap_mode()) {
      case pb::ENCAP_MODE_UNSPECIFIED:
      case pb::ENCAP_MODE_ENCAP: site.encap_mode = netlink::EncapMode::kEncap; break;
      case pb::ENCAP_MODE_ENCAP_RED: site.encap_mode = netlink::EncapMode::kEncapRed; break;
      case pb::ENCAP_MODE_INLINE:
        for (const auto& p : site.prefixes) {
          if (p.address.family != AF_INET6) {
            return FieldError(f + ".encap_mode", "inline (H.Insert) carries IPv6 only, not " + p.ToString());
          }
        }
        site.encap_mode = netlink::EncapMode::kInline;
        break;
      default: return FieldError(f + ".encap_mode", "unknown mode");
    }
    s.remotes.push_back(std::move(site));
  }
  return s;
}

pb::Slice SliceToProto(const SliceSpec& s) {
  pb::Slice out;
  out.set_id(s.id);
  out.set_table(s.table);
  for (const auto& l : s.lan_interfaces) out.add_lan_interfaces(l);
  for (const auto& p : s.lan_prefixes) out.add_lan_prefixes(p.ToString());
  auto* ls = out.mutable_local_sids();
  if (s.sid6) ls->set_sid6(s.sid6->ToString());
  if (s.sid4) ls->set_sid4(s.sid4->ToString());
  if (s.sid46) ls->set_sid46(s.sid46->ToString());
  if (s.nexthop4) ls->set_nexthop4(s.nexthop4->ToString());
  for (const auto& r : s.remotes) {
    auto* o = out.add_remotes();
    o->set_name(r.name);
    for (const auto& p : r.prefixes) o->add_prefixes(p.ToString());
    for (const auto& a : r.segments) o->add_segments(a.ToString());
    for (const auto& a : r.segments_v4) o->add_segments_v4(a.ToString());
    o->set_encap_mode(r.encap_mode == netlink::EncapMode::kEncapRed ? pb::ENCAP_MODE_ENCAP_RED
                      : r.encap_mode == netlink::EncapMode::kInline ? pb::ENCAP_MODE_INLINE
                                                                    : pb::ENCAP_MODE_ENCAP);
  }
  return out;
}

std::vector<pb::Interface> InterfacesToProto(const std::vector<netlink::Link>& links,
                                             const InterfaceRoles& roles) {
  std::vector<pb::Interface> out;
  for (const auto& l : links) {
    pb::Interface i;
    i.set_name(l.name);
    i.set_ifindex(static_cast<uint32_t>(l.ifindex));
    i.set_up(l.up);
    i.set_mac(l.mac);
    i.set_mtu(l.mtu);
    for (const auto& a : l.addresses) i.add_addresses(a.address.ToString() + "/" + std::to_string(a.length));
    if (auto it = roles.find(l.name); it != roles.end()) i.set_role(it->second);
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace segwan::edge

namespace segwan::edge {

namespace {

struct CommonStamp {
  uint16_t ssid;
  stamp::Mode mode;
  stamp::Key key;
  stamp::TimestampFormat format;
  uint16_t reflector_port;
  std::vector<IpAddress> segments;
};

Result<CommonStamp> CommonFromProto(const pb::StampSessionParams& p) {
  CommonStamp c{};
  if (p.ssid() < 1 || p.ssid() > 65535) return FieldError("params.ssid", "must be 1 to 65535");
  c.ssid = static_cast<uint16_t>(p.ssid());
  auto segs = SidList("params.segments", p.segments(), false);
  if (!segs) return segs.error();
  c.segments = *segs;
  if (p.reflector_udp_port() > 65535) return FieldError("params.reflector_udp_port", "must be at most 65535");
  if (p.sender_udp_port() > 65535) return FieldError("params.sender_udp_port", "must be at most 65535");
  c.reflector_port = p.reflector_udp_port() ? static_cast<uint16_t>(p.reflector_udp_port()) : stamp::kDefaultPort;
  switch (p.timestamp_format()) {
    case pb::TIMESTAMP_FORMAT_UNSPECIFIED:
    case pb::TIMESTAMP_FORMAT_NTP: c.format = stamp::TimestampFormat::kNtp; break;
    case pb::TIMESTAMP_FORMAT_PTPV2: c.format = stamp::TimestampFormat::kPtp; break;
    default: return FieldError("params.timestamp_format", "unknown format");
  }
  switch (p.authentication_mode()) {
    case pb::AUTHENTICATION_MODE_UNSPECIFIED:
    case pb::AUTHENTICATION_MODE_UNAUTHENTICATED: c.mode = stamp::Mode::kUnauthenticated; break;
    case pb::AUTHENTICATION_MODE_HMAC_SHA_256: {
      const auto& k = p.auth_key().key();
      if (k.size() < 16 || k.size() > 64) {
        return FieldError("params.auth_key.key", "HMAC-SHA-256 keys are 16 to 64 bytes");
      }
      c.mode = stamp::Mode::kAuthenticated;
      c.key.assign(k.begin(), k.end());
      break;
    }
    default: return FieldError("params.authentication_mode", "unknown mode");
  }
  if (p.delay_mode() != pb::DELAY_MEASUREMENT_MODE_UNSPECIFIED &&
      p.delay_mode() != pb::DELAY_MEASUREMENT_MODE_TWO_WAY) {
    return FieldError("params.delay_mode", "only two-way sessions are supported (they give both one-way delays)");
  }
  return c;
}

}  // namespace

Result<stamp::SenderSessionConfig> SenderFromProto(const pb::StampSessionParams& p) {
  auto c = CommonFromProto(p);
  if (!c) return c.error();
  stamp::SenderSessionConfig s;
  s.ssid = c->ssid;
  s.mode = c->mode;
  s.key = c->key;
  s.format = c->format;
  s.reflector_port = c->reflector_port;
  s.segments = c->segments;
  auto src = ParseIpv6(p.source_address());
  if (!src) return FieldError("params.source_address", "'" + p.source_address() + "' is not an IPv6 address");
  s.source = *src;
  auto peer = ParseIpv6(p.peer_address());
  if (!peer) return FieldError("params.peer_address", "'" + p.peer_address() + "' is not an IPv6 address");
  s.peer = *peer;
  s.interval_ms = p.interval_ms() ? p.interval_ms() : 1000;
  if (s.interval_ms > 60000) return FieldError("params.interval_ms", "must be 1 to 60000");
  s.packet_count = p.packet_count();
  s.duration_ms = p.duration_ms();
  auto ret = SidList("params.return_path_segments", p.return_path_segments(), false);
  if (!ret) return ret.error();
  s.return_request = *ret;
  if (p.padding_bytes() > 1400) return FieldError("params.padding_bytes", "must be at most 1400");
  s.padding = p.padding_bytes();
  s.accept_zero_ssid = !p.reject_zero_ssid();
  s.follow_up = p.follow_up_telemetry();
  return s;
}

Result<stamp::ReflectorSessionConfig> ReflectorFromProto(const pb::StampSessionParams& p) {
  auto c = CommonFromProto(p);
  if (!c) return c.error();
  stamp::ReflectorSessionConfig r;
  r.ssid = c->ssid;
  r.mode = c->mode;
  r.key = c->key;
  r.format = c->format;
  r.return_segments = c->segments;
  r.port = c->reflector_port;
  if (!p.source_address().empty()) {
    auto local = ParseIpv6(p.source_address());
    if (!local) return FieldError("params.source_address", "'" + p.source_address() + "' is not an IPv6 address");
    r.local = *local;
  }
  switch (p.reflector_mode()) {
    case pb::SESSION_REFLECTOR_MODE_UNSPECIFIED:
    case pb::SESSION_REFLECTOR_MODE_STATELESS: r.reflector_mode = stamp::ReflectorMode::kStateless; break;
    case pb::SESSION_REFLECTOR_MODE_STATEFUL: r.reflector_mode = stamp::ReflectorMode::kStateful; break;
    default: return FieldError("params.reflector_mode", "unknown mode");
  }
  return r;
}

}  // namespace segwan::edge
