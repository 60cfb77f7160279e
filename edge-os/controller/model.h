#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace segwan::controller {

// Who is asking: the operator (sees everything) or one tenant (sees only its own objects;
// another tenant's objects do not exist for it).
struct Principal {
  bool is_operator = false;
  std::string tenant_id;
  bool Sees(const std::string& owner) const { return is_operator || tenant_id == owner; }
};

// The controller's objects as the store keeps them. Runtime state (a device's connection, a
// slice's state on each edge) lives with the services, not here.

struct Tenant {
  std::string id;            // "t1", "t2", ...
  std::string name;
  std::string token_sha256;  // hex; the token itself is shown once, at creation
  int64_t created_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Tenant, id, name, token_sha256, created_ms)

struct DeviceInterface {
  std::string name;
  std::vector<std::string> addresses;  // "addr/len"
  std::string role;                    // "wan", "lan", "mgmt" or ""
  bool up = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DeviceInterface, name, addresses, role, up)

struct Device {
  std::string id;
  bool enabled = false;
  std::string grpc_address;
  std::vector<std::string> capabilities;
  std::string slice_mode;  // "vrf", "table" or ""
  std::string locator;     // IPv6 prefix
  std::string version;
  std::vector<DeviceInterface> interfaces;
  int64_t registered_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Device, id, enabled, grpc_address, capabilities,
                                                slice_mode, locator, version, interfaces,
                                                registered_ms)

// What the controller's CA knows of a device: a pending join token and the certificates it
// issued (several while a renewed one replaces the one before). Revoking forgets them all.
struct IssuedCertificate {
  std::string serial;  // hex
  int64_t not_after_s = 0;
  int64_t issued_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(IssuedCertificate, serial, not_after_s, issued_ms)

struct Enrolment {
  std::string device_id;
  std::string token_sha256;  // hex; empty once spent
  int64_t token_expires_ms = 0;
  int64_t created_ms = 0;
  std::vector<IssuedCertificate> certificates;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Enrolment, device_id, token_sha256, token_expires_ms,
                                                created_ms, certificates)

struct SliceSite {
  std::string device;
  std::string interface;
  std::string nexthop4;  // table mode: the site's IPv4 gateway on the LAN (IPv4 needs it)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SliceSite, device, interface, nexthop4)

struct SlicePath {
  std::string from, to;                // device ids
  std::vector<std::string> waypoints;  // SIDs visited before the destination's SID
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SlicePath, from, to, waypoints)

struct Slice {
  std::string id;  // "sl1", ...
  std::string tenant_id;
  std::string name;
  uint32_t number = 0;  // allocation index: table id and SID function derive from it
  std::vector<SliceSite> sites;
  std::vector<SlicePath> paths;
  int64_t created_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Slice, id, tenant_id, name, number, sites, paths,
                                                created_ms)

// A delay session's choices, kept and shown as these names.
enum class TimestampFormat { kNtp, kPtp };
enum class ReflectorMode { kStateless, kStateful };
enum class EngineChoice { kAuto, kEbpf, kUserspace };  // auto: eBPF where the edge can
NLOHMANN_JSON_SERIALIZE_ENUM(TimestampFormat, {{TimestampFormat::kNtp, "ntp"}, {TimestampFormat::kPtp, "ptp"}})
NLOHMANN_JSON_SERIALIZE_ENUM(ReflectorMode, {{ReflectorMode::kStateless, "stateless"},
                                             {ReflectorMode::kStateful, "stateful"}})
NLOHMANN_JSON_SERIALIZE_ENUM(EngineChoice, {{EngineChoice::kAuto, "auto"},
                                            {EngineChoice::kEbpf, "ebpf"},
                                            {EngineChoice::kUserspace, "userspace"}})
// The name of a value, and the value of a name (nullopt: not one of them).
template <typename E>
std::string NameOf(E e) {
  return nlohmann::json(e).get<std::string>();
}
template <typename E>
std::optional<E> Parse(std::string_view name, std::initializer_list<E> all) {
  for (E e : all) {
    if (NameOf(e) == name) return e;
  }
  return std::nullopt;
}

struct DelaySession {
  std::string id;  // "ds1", ...
  std::string tenant_id;
  std::string slice_id;
  std::string sender, reflector;  // device ids
  uint32_t ssid = 0;
  uint32_t interval_ms = 1000;
  TimestampFormat timestamp_format = TimestampFormat::kNtp;
  ReflectorMode reflector_mode = ReflectorMode::kStateless;
  EngineChoice engine = EngineChoice::kAuto;
  bool authenticated = false;
  std::string auth_key_hex;  // HMAC-SHA-256 key (key id 1), never shown over REST
  bool running = false;
  int64_t created_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DelaySession, id, tenant_id, slice_id, sender,
                                                reflector, ssid, interval_ms, timestamp_format,
                                                reflector_mode, engine, authenticated, auth_key_hex,
                                                running, created_ms)

// Per-session totals since the session was created, updated with every batch of samples.
struct SessionCounters {
  uint64_t received = 0;
  int64_t max_seq = -1;
  int64_t max_reflector_seq = -1;
  uint64_t edge_dropped = 0;  // records the sender edge dropped for lack of queue room
  uint64_t edge_sent = 0;     // packets the sender edge says it sent
  // Added to the edges' sequence numbers: an edge that lost the session (restart) counts
  // from 0 again, and the session's numbers must keep growing.
  int64_t seq_offset = 0;
  int64_t rseq_offset = 0;
  bool operator==(const SessionCounters&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SessionCounters, received, max_seq,
                                                max_reflector_seq, edge_dropped, edge_sent,
                                                seq_offset, rseq_offset)

// Loss monitoring of one flow of a slice (alternate marking): the SID list from one site to
// another, coloured at `from`'s edge and counted at both ends.
struct LossSession {
  std::string id;  // "ls1", ...
  std::string tenant_id;
  std::string slice_id;
  std::string from, to;            // device ids
  std::string family = "ipv6";     // which of the slice's flows: "ipv6" or "ipv4"
  std::vector<std::string> segments;  // the flow's SID list, first first
  uint32_t period_ms = 10'000;
  int64_t created_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LossSession, id, tenant_id, slice_id, from, to, family,
                                                segments, period_ms, created_ms)

// One closed period: what the ingress coloured and the egress counted in it.
struct LossPeriod {
  uint64_t index = 0;   // the ingress's period number
  uint32_t colour = 0;
  uint32_t spans = 1;   // > 1: the controller missed switches, this record covers that many periods
  int64_t end_ms = 0;   // UTC: the colour switch that closed it
  int64_t start_ms = 0;
  uint64_t sent = 0, received = 0;
  int64_t lost = 0;     // sent - received
  double loss_ratio = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LossPeriod, index, colour, spans, end_ms, start_ms, sent,
                                                received, lost, loss_ratio)

// Where a loss session's accounting stands: the cumulative counters at the last close of each
// colour, and the ingress period number then.
struct LossCursor {
  std::array<uint64_t, 2> tx{};
  std::array<uint64_t, 2> rx{};
  uint64_t period_index = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LossCursor, tx, rx, period_index)

}  // namespace segwan::controller
