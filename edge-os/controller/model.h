#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

// An optional field is null in JSON (this nlohmann/json has no std::optional of its own).
namespace nlohmann {
template <typename T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& o) {
    if (o) j = *o;
    else j = nullptr;
  }
  static void from_json(const json& j, std::optional<T>& o) {
    if (j.is_null()) o.reset();
    else o = j.get<T>();
  }
};
}  // namespace nlohmann

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
  // Ask the reflector when each reply really left (RFC 8972 §4.7) and measure the return
  // delay from then: for user-space reflectors, whose T3 is taken before the send.
  bool follow_up_telemetry = false;
  std::string auth_key_hex;  // HMAC-SHA-256 key (key id 1), never shown over REST
  bool running = false;
  int64_t created_ms = 0;
  // A probe of SLA steering: the policy it measures for and the candidate path it takes
  // (its waypoints, instead of the slice's, from sender to reflector).
  std::string steering;
  std::string candidate;
  std::optional<std::vector<std::string>> waypoints;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DelaySession, id, tenant_id, slice_id, sender,
                                                reflector, ssid, interval_ms, timestamp_format,
                                                reflector_mode, engine, authenticated, auth_key_hex,
                                                follow_up_telemetry, running, created_ms, steering, candidate, waypoints)

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
  // Replies by what they said beyond their timestamps (StampResult.flags, RFC 8972 §4): a TLV
  // the reflector did not understand (U), one it found malformed (M), TLVs that failed its
  // HMAC check (I); a reflector clock not synchronised; a follow-up transmit time used.
  uint64_t tlv_unrecognized = 0;
  uint64_t tlv_malformed = 0;
  uint64_t tlv_integrity = 0;
  uint64_t unsynchronized = 0;
  uint64_t follow_up = 0;
  bool operator==(const SessionCounters&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SessionCounters, received, max_seq,
                                                max_reflector_seq, edge_dropped, edge_sent,
                                                seq_offset, rseq_offset, tlv_unrecognized,
                                                tlv_malformed, tlv_integrity, unsynchronized,
                                                follow_up)

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
  uint64_t index = 0;   // the period's number in the session (LossCursor::next_index)
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
// colour, and the ingress period number then. Stored periods are numbered by the controller
// (`next_index`), not by the ingress: an agent that restarts, or a flow that moves to another
// SID list, counts its periods from 0 again, and the record of the session goes on.
struct LossCursor {
  std::array<uint64_t, 2> tx{};
  std::array<uint64_t, 2> rx{};
  uint64_t period_index = 0;
  int64_t next_index = -1;  // the number of the next stored period; -1 (cursors stored before): period_index
  // Colours (bit 0, bit 1) whose tx/rx above were read while that colour could still change
  // (the flow moved to another SID list mid-period): their next close only sets the baseline.
  uint32_t unsettled = 0;
  uint64_t NextIndex() const { return next_index >= 0 ? static_cast<uint64_t>(next_index) : period_index; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LossCursor, tx, rx, period_index, next_index, unsettled)

// ---- SLA steering

// What a tenant asks of a path, per direction and per window; a limit left out is not checked.
struct SlaLimits {
  std::optional<double> delay_ms;      // one-way delay, mean over the window
  std::optional<double> delay_p90_ms;  // one-way delay, 90th percentile over the window
  std::optional<double> jitter_ms;     // mean absolute difference of consecutive one-way delays
  std::optional<double> loss_pct;      // probes lost in the window, percent
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SlaLimits, delay_ms, delay_p90_ms, jitter_ms, loss_pct)

struct SlaClass {
  std::string id;  // "sla1", ...
  std::string tenant_id;
  std::string name;
  SlaLimits limits;
  int64_t created_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SlaClass, id, tenant_id, name, limits, created_ms)

// One way from a site to another: the SIDs visited before the destination's (none: the
// underlay's own route).
struct SteeringCandidate {
  std::string name;
  std::vector<std::string> waypoints;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SteeringCandidate, name, waypoints)

// How the candidates are measured and judged.
struct ProbeProfile {
  uint32_t interval_ms = 100;   // one probe per candidate this often
  uint32_t window_ms = 300;     // judged per window
  uint32_t windows = 3;         // violated this many windows in a row: move
  uint32_t hold_down_s = 30;    // the preferred path must comply this long before traffic returns
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ProbeProfile, interval_ms, window_ms, windows, hold_down_s)

// A direction of a slice steered under an SLA class, with its candidates, the preferred first.
struct SteeringPair {
  std::string from, to;  // device ids
  std::vector<SteeringCandidate> candidates;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SteeringPair, from, to, candidates)

// A slice's steering: the SLA class, the directions it covers (asked for, or every ordered
// pair of its devices) with their candidates resolved at creation (the tenant's list, or the
// slice's own path, the underlay's route and one via each core SID the operator declared).
struct SteeringPolicy {
  std::string id;  // "st1", ...
  std::string tenant_id;
  std::string slice_id;
  std::string sla_id;
  std::vector<SteeringPair> pairs;
  std::vector<SteeringCandidate> candidates;
  ProbeProfile probe;
  int64_t created_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SteeringPolicy, id, tenant_id, slice_id, sla_id, pairs,
                                                candidates, probe, created_ms)

// The candidate a steered direction uses, kept so that a restarted controller converges to the
// same choice without a flap.
struct SteeringChoice {
  std::string policy_id;
  std::string from, to;
  std::string active;     // candidate name
  int64_t since_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SteeringChoice, policy_id, from, to, active, since_ms)

// What one window of one candidate measured.
struct WindowMeasure {
  int64_t end_ms = 0;
  uint32_t received = 0, lost = 0;
  double delay_ms = 0, delay_p90_ms = 0, jitter_ms = 0, loss_pct = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WindowMeasure, end_ms, received, lost, delay_ms, delay_p90_ms,
                                                jitter_ms, loss_pct)

// Violations, clearances and switches, as the operator and the tenant read them.
struct SteeringEvent {
  int64_t id = 0;  // the store's order
  int64_t time_ms = 0;
  std::string tenant_id, slice_id, policy_id;
  std::string from, to;
  std::string kind;        // "violation", "clear", "switch", "no_compliant"
  std::string path;        // the candidate it is about (the one left, for a switch)
  std::string to_path;     // a switch: the candidate taken
  WindowMeasure measured;  // of `path`
  SlaLimits limits;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SteeringEvent, id, time_ms, tenant_id, slice_id, policy_id, from,
                                                to, kind, path, to_path, measured, limits)

// Where a tenant's alerts go: a JSON POST per alert.
struct Webhook {
  std::string tenant_id;
  std::string url;
  int64_t updated_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Webhook, tenant_id, url, updated_ms)

}  // namespace segwan::controller
