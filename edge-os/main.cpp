// edge-os: the SegWAN controller. This file only wires the parts together.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "edge-os/controller/config.h"
#include "edge-os/controller/controller.h"
#include "edge-os/controller/tokens.h"
#include "edge-os/northbound/rest.h"
#include "edge-os/southbound/edge_client.h"
#include "edge-os/southbound/registration_service.h"
#include "edge-os/ha/follower.h"
#include "edge-os/ha/leader.h"
#include "edge-os/store/store.h"
#include "edge-os/trust/ca.h"
#include "edge-os/trust/device_trust.h"
#include "segwan/cli.h"
#include "segwan/log.h"
#include "segwan/tls.h"
#include "segwan/version.h"

namespace {

using namespace segwan::controller;

// A registration with 256 interfaces of 64 addresses fits well inside this.
constexpr int kMaxRegistrationMessage = 1 << 20;

grpc::ServerBuilder& Tuned(grpc::ServerBuilder& builder) {
  // Peers ping every 10 s to notice a dead connection: allowed, without strikes.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.SetMaxReceiveMessageSize(kMaxRegistrationMessage);
  return builder;
}

enum class Followed { kLeads, kStopped, kFailed };

// A follower: REST handed to the leader, edges sent on, until this process takes the lead
// or a stop signal comes.
Followed Follow(const ControllerConfig& c, LeaderElection& election,
            const std::shared_ptr<grpc::ServerCredentials>& creds, const sigset_t& stop) {
  FollowerRest rest(&election);
  if (auto port = rest.Start(c.http_listen.host, c.http_listen.port); !port) {
    SEGWAN_LOG(kError, "main") << port.error().ToString();
    return Followed::kFailed;
  }
  FollowerRegistration registration(&election);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  Tuned(builder).AddListeningPort(c.grpc_listen.ToString(), creds, &grpc_port);
  builder.RegisterService(&registration);
  auto server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    SEGWAN_LOG(kError, "main") << "--grpc-listen: cannot listen on " << c.grpc_listen.ToString();
    return Followed::kFailed;
  }
  SEGWAN_LOG(kInfo, "main") << "edge-os " << segwan::Version() << " follows (" << c.advertise_http
                            << "): REST is the leader's, edges are sent to it";
  bool stopped = false;
  const bool lead = election.Campaign([&stop, &stopped] {
    timespec now{0, 0};
    sigset_t pending = stop;
    return stopped = sigtimedwait(&pending, nullptr, &now) > 0;
  });
  if (lead) {
    // The session that holds the lock fails: stop acting at once, before another can lead
    // (the supervisor starts this process again, as a follower).
    election.Watch([] { std::_Exit(3); });
    // Not before an old leader has surely stopped (its check finds its session gone).
    SEGWAN_LOG(kInfo, "main") << "takes over in " << election.Grace().count() << " ms";
    timespec grace{0, static_cast<long>(election.Grace().count() % 1000) * 1'000'000};
    grace.tv_sec = static_cast<time_t>(election.Grace().count() / 1000);
    sigset_t pending = stop;
    stopped = sigtimedwait(&pending, nullptr, &grace) > 0;
  }
  rest.Stop();
  server->Shutdown(std::chrono::system_clock::now());
  if (lead && !stopped) SEGWAN_LOG(kInfo, "main") << "grace over: starting as the leader";
  return lead && !stopped ? Followed::kLeads : Followed::kStopped;
}

int Run(const ControllerConfig& c) {
  // A data folder in use has its operator token: an empty store file there lost its content.
  const bool new_data_dir = access(c.operator_token_file.c_str(), F_OK) != 0;
  auto op_token = LoadOrCreateToken(c.operator_token_file);
  if (!op_token) {
    SEGWAN_LOG(kError, "main") << op_token.error().ToString();
    return 1;
  }
  std::string dev_token;
  if (c.insecure) {
    auto t = LoadOrCreateToken(c.device_token_file);
    if (!t) {
      SEGWAN_LOG(kError, "main") << t.error().ToString();
      return 1;
    }
    dev_token = *t;
    SEGWAN_LOG(kWarn, "main") << "--insecure: the southbound is plaintext and any holder of " << c.device_token_file
                              << " can register as any device; use it on a closed lab network only";
  }
  auto store = Store::Open(c.store.empty() ? c.db_path : c.store, new_data_dir);
  if (!store) {
    SEGWAN_LOG(kError, "main") << store.error().ToString();
    return 1;
  }
  // Mutual TLS (default): the CA and the controller's own certificate in the data folder.
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<DeviceTrust> trust;
  std::optional<segwan::TlsIdentity> tls;
  if (!c.insecure) {
    auto loaded = CertificateAuthority::LoadOrCreate(c.data_dir);
    if (!loaded) {
      SEGWAN_LOG(kError, "main") << "CA in " << c.data_dir << ": " << loaded.error().ToString();
      return 1;
    }
    ca = std::move(*loaded);
    if (auto st = ca->EnsureOwnCertificate(c.data_dir, std::chrono::hours(24 * 365), std::chrono::hours(24 * 30)); !st) {
      SEGWAN_LOG(kError, "main") << "controller certificate: " << st.error().ToString();
      return 1;
    }
    tls = segwan::TlsIdentity{c.data_dir + "/controller.key", c.data_dir + "/controller.pem", ca->ca_file()};
  }
  auto server_creds = tls ? segwan::MtlsServerCredentials(*tls, segwan::ClientCertificates::kOptional)
                          : segwan::Result<std::shared_ptr<grpc::ServerCredentials>>(grpc::InsecureServerCredentials());
  if (!server_creds) {
    SEGWAN_LOG(kError, "main") << server_creds.error().ToString();
    return 2;
  }

  // Before any thread starts: every thread inherits the mask; main waits for the signals.
  const sigset_t stop = segwan::BlockStopSignals();

  // Several controllers on one PostgreSQL: follow until this one leads.
  std::unique_ptr<LeaderElection> election;
  if (!c.store.empty()) {
    auto e = LeaderElection::Open(
        {.uri = c.store, .self = {.id = c.advertise_http, .http = c.advertise_http, .grpc = c.advertise_grpc}});
    if (!e) {
      SEGWAN_LOG(kError, "main") << e.error().ToString();
      return 1;
    }
    election = std::move(*e);
    if (const auto f = Follow(c, *election, *server_creds, stop); f != Followed::kLeads) {
      return f == Followed::kStopped ? 0 : 1;
    }
  }
  const auto leader = election ? election->Leader() : std::nullopt;  // this process, now
  const uint64_t epoch = leader ? leader->epoch : 0;
  auto connector = GrpcEdgeConnector::Create(
      {.stream_batch_delay = std::chrono::milliseconds(c.stream_batch_ms), .tls = tls, .leader_epoch = epoch});
  if (!connector) {
    SEGWAN_LOG(kError, "main") << connector.error().ToString();
    return 2;
  }
  // What the store says of the devices' enrolments is read now, as the leader: a follower's
  // view of it would be as old as its start.
  if (ca) {
    trust = std::make_unique<DeviceTrust>(store->get(), ca.get(),
                                          TrustOptions{.join_token_lifetime = std::chrono::hours(c.join_token_hours),
                                                       .device_certificate_lifetime =
                                                           std::chrono::hours(24 * c.device_cert_days)});
  }

  Controller controller(store->get(), connector->get(),
                        {.device_token = dev_token,
                         .auto_enable = c.auto_enable,
                         .heartbeat = std::chrono::milliseconds(c.heartbeat_ms),
                         .aggregate_interval_ms = c.aggregate_interval_s * 1000,
                         .poll_interval = std::chrono::milliseconds(c.poll_interval_ms),
                         .results = c.results == "poll" ? ResultMode::kPoll : ResultMode::kStream,
                         .retention_ms = c.retention_days * 86'400'000LL,
                         .max_slices_per_tenant = static_cast<size_t>(c.max_slices_per_tenant),
                         .max_sessions_per_tenant = static_cast<size_t>(c.max_sessions_per_tenant),
                         .max_sessions_per_device = static_cast<size_t>(c.max_sessions_per_device),
                         .core_sids = c.core_sids,
                         .steering_grace = std::chrono::milliseconds(c.steering_grace_ms),
                         .webhooks = {.allow = c.webhook_allow}});
  controller.SetOperatorToken(*op_token);
  for (const auto* e : {&controller.load_error(), trust ? &trust->load_error() : nullptr}) {
    if (e && *e) {
      SEGWAN_LOG(kError, "main") << "cannot read what " << (*store)->Where() << " holds: " << (*e)->message;
      return 1;
    }
  }

  RegistrationService registration(&controller, trust.get(), epoch);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  Tuned(builder).AddListeningPort(c.grpc_listen.ToString(), *server_creds, &grpc_port);
  builder.RegisterService(&registration);
  auto grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    SEGWAN_LOG(kError, "main") << "--grpc-listen: cannot listen on " << c.grpc_listen.ToString();
    return 1;
  }
  RestOptions rest_options;
  if (election) rest_options.role = "leader";
  if (!c.metrics_token_file.empty()) {
    auto t = LoadOrCreateToken(c.metrics_token_file);
    if (!t) {
      SEGWAN_LOG(kError, "main") << t.error().ToString();
      return 1;
    }
    rest_options.metrics_token = *t;
  }
  RestServer rest(&controller, c.web_root.empty() ? DefaultWebRoot() : c.web_root, trust.get(), rest_options);
  auto http_port = rest.Start(c.http_listen.host, c.http_listen.port);
  if (!http_port) {
    SEGWAN_LOG(kError, "main") << http_port.error().ToString();
    grpc_server->Shutdown();
    return 1;
  }
  controller.Start();
  SEGWAN_LOG(kInfo, "main") << "edge-os " << segwan::Version() << ": REST on " << c.http_listen.ToString()
                            << ", Registration on " << c.grpc_listen.ToString()
                            << (c.insecure ? " (plaintext)" : " (mutual TLS)") << ", data in " << (*store)->Where()
                            << (election ? " (leading)" : "");
  int sig = 0;
  sigwait(&stop, &sig);
  SEGWAN_LOG(kInfo, "main") << "signal " << sig << ", stopping";
  rest.Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  controller.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  segwan::FlagSet flags("edge-os",
                        "SegWAN controller: registers edge routers, turns tenants' slices and\n"
                        "delay sessions into per-edge configuration, and keeps their results.");
  AddControllerFlags(flags);
  if (auto code = segwan::StartCommandLine(flags, argc, argv)) return *code;
  segwan::DisableMutexDeadlockDetection();
  if (flags.GetBool("print-routes")) {  // the route table, for the OpenAPI check
    for (const auto& [method, pattern] : RestServer(nullptr, "").RouteList()) std::printf("%s %s\n", method.c_str(), pattern.c_str());
    return 0;
  }
  auto config = ControllerConfigFromFlags(flags);
  if (!config) {
    std::fprintf(stderr, "edge-os: %s\n", config.error().ToString().c_str());
    return 2;
  }
  return Run(*config);
}
