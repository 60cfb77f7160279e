#pragma once

#include <string>
#include <vector>

#include "edge-os/controller/model.h"
#include "segwan/flags.h"
#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::controller {

inline constexpr const char* kDefaultHttpListen = "127.0.0.1:8080";
inline constexpr const char* kDefaultGrpcListen = "[::]:50051";
inline constexpr const char* kDefaultDataDir = "/var/lib/segwan/controller";

// What edge-os is told at start. Paths default to files under data_dir.
struct ControllerConfig {
  HostPort http_listen;   // REST API, dashboard, /metrics
  HostPort grpc_listen;   // Registration service for the edges
  std::string data_dir = kDefaultDataDir;
  std::string db_path;                   // SQLite file; default <data_dir>/segwan.db
  std::string store;                     // postgresql:// URI: PostgreSQL instead of db_path
  std::string advertise_http;            // with store: where followers forward REST to this one
  std::string advertise_grpc;            // with store: where followers send the edges
  std::string operator_token_file;       // created on first start; default <data_dir>/operator.token
  std::string device_token_file;         // registration token for edges; default <data_dir>/device.token
  std::string web_root;                  // serve the dashboard from disk (development)
  bool auto_enable = false;              // enable devices at registration (lab)
  std::string results = "stream";        // "stream" (notification) or "poll"
  int64_t stream_batch_ms = 250;         // notification mode: a result's longest wait for its batch
  int64_t poll_interval_ms = 1000;       // how often the sender edges' results are fetched
  int64_t aggregate_interval_s = 30;     // length of a statistics interval
  int64_t heartbeat_ms = 2000;           // heartbeat asked of the edges; 3 missed = disconnected
  int64_t retention_days = 7;            // samples and aggregates older than this are removed
  // Mutual TLS on the southbound (default): the controller's CA in the data folder (ca.key,
  // ca.pem) signs its own certificate and the devices' at enrolment. `insecure`: plaintext
  // and the shared registration token instead (closed lab networks only; warned at start).
  bool insecure = false;
  int64_t max_slices_per_tenant = 100;
  int64_t max_sessions_per_tenant = 500;    // delay and loss sessions
  int64_t max_sessions_per_device = 1000;   // sessions it is either end of
  std::string metrics_token_file;  // set: /metrics asks for this token (or the operator's)
  int64_t device_cert_days = 30;   // lifetime of a device certificate (renewed at 2/3)
  int64_t join_token_hours = 24;   // lifetime of a join token
  // SLA steering: the operator's core routers, each a candidate path (NAME=SID[+SID...]),
  // and how long after its end a probe window is judged.
  std::vector<SteeringCandidate> core_sids;
  int64_t steering_grace_ms = 400;
  std::vector<IpPrefix> webhook_allow;  // private networks tenants' webhooks may reach
};

// "p1=fc00:0:1::e,p2=fc00:0:2::e" (a waypoint list joined by '+'); errors name --core-sids.
Result<std::vector<SteeringCandidate>> ParseCoreSids(const std::string& text);

void AddControllerFlags(FlagSet& flags);
Result<ControllerConfig> ControllerConfigFromFlags(const FlagSet& flags);

}  // namespace segwan::controller
