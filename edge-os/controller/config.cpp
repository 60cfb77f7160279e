#include "edge-os/controller/config.h"

#include <optional>

#include "edge-os/store/store.h"
#include "segwan/text.h"

namespace segwan::controller {

void AddControllerFlags(FlagSet& f) {
  f.AddString("config", "", "read settings from this file (name = value lines)");
  f.AddString("http-listen", kDefaultHttpListen, "REST API, dashboard and /metrics address");
  f.AddString("grpc-listen", kDefaultGrpcListen, "Registration service address for the edges");
  f.AddString("data-dir", kDefaultDataDir, "where the controller keeps its files");
  f.AddString("db", "", "SQLite database file (default: DATA_DIR/segwan.db)");
  f.AddString("store", "", "a postgresql:// URI: keep the data in PostgreSQL instead of --db (several controllers)");
  f.AddString("advertise-http", "", "--store: the REST URL other controllers forward to (default: http://HTTP_LISTEN)");
  f.AddString("advertise-grpc", "", "--store: the Registration address edges are sent to (default: GRPC_LISTEN)");
  f.AddString("operator-token-file", "", "operator bearer token (default: DATA_DIR/operator.token)");
  f.AddString("device-token-file", "", "shared edge registration token, --insecure only (default: DATA_DIR/device.token)");
  f.AddString("web-root", "", "serve the dashboard from this folder (development)");
  f.AddBool("auto-enable", false, "enable edges as soon as they register (lab)");
  f.AddString("results", "stream", "how delay results arrive: stream (each edge pushes them) or poll");
  f.AddInt("stream-batch-ms", 250, "stream: how long an edge may hold a result to fill a batch");
  f.AddInt("poll-interval-ms", 1000, "how often delay results are fetched (poll) and intervals closed");
  f.AddInt("interval-s", 30, "length of a statistics interval, seconds");
  f.AddInt("heartbeat-ms", 2000, "heartbeat interval asked of the edges (3 missed: disconnected)");
  f.AddInt("retention-days", 7, "remove samples and aggregates older than this");
  f.AddString("metrics-token-file", "", "when set, /metrics asks for this bearer token (created if missing)");
  f.AddBool("print-routes", false, "print the REST routes (method and path pattern) and exit");
  f.AddInt("max-slices-per-tenant", 100, "slices one tenant may have");
  f.AddInt("max-sessions-per-tenant", 500, "delay and loss sessions one tenant may have");
  f.AddInt("max-sessions-per-device", 1000, "delay and loss sessions one device may be an end of");
  f.AddBool("insecure", false, "plaintext southbound with a shared registration token (closed lab networks only)");
  f.AddInt("device-cert-days", 30, "lifetime of the certificates given to devices (renewed at two thirds)");
  f.AddInt("join-token-hours", 24, "how long a join token made for a device stays valid");
  f.AddString("core-sids", "", "steering: core routers as candidate paths, NAME=SID[+SID...],... (e.g. p1=fc00:0:1::e)");
  f.AddInt("steering-grace-ms", 400, "steering: how long after its end a probe window is judged (at least the stream batch)");
  f.AddString("webhook-allow", "", "networks (CIDR,...) tenants' webhooks may reach although loopback or private");
  f.AddString("log-level", "info", "debug, info, warn or error");
}

Result<ControllerConfig> ControllerConfigFromFlags(const FlagSet& f) {
  ControllerConfig c;
  for (const char* name : {"http-listen", "grpc-listen"}) {
    const auto text = f.GetString(name);
    auto hp = ParseHostPort(text);
    if (!hp) return FieldError(std::string("--") + name, "'" + text + "' is not host:port");
    (std::string(name) == "http-listen" ? c.http_listen : c.grpc_listen) = *hp;
  }
  c.data_dir = f.GetString("data-dir");
  if (c.data_dir.empty()) return FieldError("--data-dir", "must not be empty");
  auto or_default = [&](const char* flag, const char* file) {
    const auto v = f.GetString(flag);
    return v.empty() ? c.data_dir + "/" + file : v;
  };
  c.db_path = or_default("db", "segwan.db");
  c.store = f.GetString("store");
  if (!c.store.empty() && !Store::IsPostgres(c.store)) {
    return FieldError("--store", "must be a postgresql:// URI (the SQLite file is --db)");
  }
  c.advertise_http = f.GetString("advertise-http");
  if (c.advertise_http.empty()) c.advertise_http = "http://" + c.http_listen.ToString();
  if (c.advertise_http.rfind("http://", 0) != 0 && c.advertise_http.rfind("https://", 0) != 0) {
    return FieldError("--advertise-http", "must be an http:// or https:// URL");
  }
  c.advertise_grpc = f.GetString("advertise-grpc");
  if (c.advertise_grpc.empty()) c.advertise_grpc = c.grpc_listen.ToString();
  if (!ParseHostPort(c.advertise_grpc)) return FieldError("--advertise-grpc", "'" + c.advertise_grpc + "' is not host:port");
  c.operator_token_file = or_default("operator-token-file", "operator.token");
  c.device_token_file = or_default("device-token-file", "device.token");
  c.web_root = f.GetString("web-root");
  c.auto_enable = f.GetBool("auto-enable");
  auto in_range = [&](const char* name, int64_t lo, int64_t hi, int64_t* out) -> std::optional<Error> {
    const int64_t v = f.GetInt(name);
    if (v < lo || v > hi) {
      return FieldError(std::string("--") + name, "must be " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    *out = v;
    return std::nullopt;
  };
  c.results = f.GetString("results");
  if (c.results != "stream" && c.results != "poll") return FieldError("--results", "must be stream or poll");
  if (auto e = in_range("stream-batch-ms", 1, 1000, &c.stream_batch_ms)) return *e;
  if (auto e = in_range("poll-interval-ms", 50, 60'000, &c.poll_interval_ms)) return *e;
  if (auto e = in_range("interval-s", 1, 3600, &c.aggregate_interval_s)) return *e;
  if (auto e = in_range("heartbeat-ms", 100, 60'000, &c.heartbeat_ms)) return *e;
  if (auto e = in_range("retention-days", 1, 3650, &c.retention_days)) return *e;
  c.insecure = f.GetBool("insecure");
  if (auto e = in_range("max-slices-per-tenant", 1, 100'000, &c.max_slices_per_tenant)) return *e;
  if (auto e = in_range("max-sessions-per-tenant", 1, 100'000, &c.max_sessions_per_tenant)) return *e;
  if (auto e = in_range("max-sessions-per-device", 1, 100'000, &c.max_sessions_per_device)) return *e;
  c.metrics_token_file = f.GetString("metrics-token-file");
  if (auto e = in_range("device-cert-days", 1, 825, &c.device_cert_days)) return *e;
  if (auto e = in_range("join-token-hours", 1, 24 * 30, &c.join_token_hours)) return *e;
  auto cores = ParseCoreSids(f.GetString("core-sids"));
  if (!cores) return cores.error();
  c.core_sids = std::move(*cores);
  if (auto e = in_range("steering-grace-ms", 10, 60'000, &c.steering_grace_ms)) return *e;
  for (const auto& item : SplitList(f.GetString("webhook-allow"))) {
    auto prefix = ParsePrefix(item);
    if (!prefix) return FieldError("--webhook-allow", "'" + item + "' is not a network (CIDR)");
    c.webhook_allow.push_back(*prefix);
  }
  return c;
}

Result<std::vector<SteeringCandidate>> ParseCoreSids(const std::string& text) {
  std::vector<SteeringCandidate> out;
  for (const auto& item : SplitList(text)) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) return FieldError("--core-sids", "'" + item + "' is not NAME=SID");
    SteeringCandidate c{item.substr(0, eq), SplitList(std::string_view(item).substr(eq + 1), '+')};
    if (!IsValidIdentifier(c.name, 32) || c.name == "direct" || c.name == "slice") {
      return FieldError("--core-sids", "'" + c.name + "' must match [a-z0-9][a-z0-9-]{0,31} and not be direct or slice");
    }
    for (const auto& other : out) {
      if (other.name == c.name) return FieldError("--core-sids", "'" + c.name + "' is named twice");
    }
    if (c.waypoints.empty()) return FieldError("--core-sids", c.name + " has no SID");
    for (const auto& sid : c.waypoints) {
      if (!ParseIpv6(sid)) return FieldError("--core-sids", "'" + sid + "' of " + c.name + " is not an IPv6 SID");
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace segwan::controller
