// edge-os: the SegWAN controller. This file only wires the parts together.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>

#include "edge-os/controller/config.h"
#include "edge-os/controller/controller.h"
#include "edge-os/controller/tokens.h"
#include "edge-os/northbound/rest.h"
#include "edge-os/southbound/edge_client.h"
#include "edge-os/southbound/registration_service.h"
#include "edge-os/store/store.h"
#include "segwan/cli.h"
#include "segwan/log.h"
#include "segwan/tls.h"
#include "segwan/version.h"

namespace {

using namespace segwan::controller;

int Run(const ControllerConfig& c) {
  auto op_token = LoadOrCreateToken(c.operator_token_file);
  if (!op_token) {
    SEGWAN_LOG(kError, "main") << op_token.error().ToString();
    return 1;
  }
  auto dev_token = LoadOrCreateToken(c.device_token_file);
  if (!dev_token) {
    SEGWAN_LOG(kError, "main") << dev_token.error().ToString();
    return 1;
  }
  auto store = Store::Open(c.db_path);
  if (!store) {
    SEGWAN_LOG(kError, "main") << store.error().ToString();
    return 1;
  }
  auto connector = GrpcEdgeConnector::Create({.ca_file = c.tls_ca, .cert_file = c.tls_cert, .key_file = c.tls_key});
  if (!connector) {
    SEGWAN_LOG(kError, "main") << connector.error().ToString();
    return 2;
  }
  auto server_creds = segwan::ServerCredentials({c.tls_cert, c.tls_key, c.tls_ca});
  if (!server_creds) {
    SEGWAN_LOG(kError, "main") << server_creds.error().ToString();
    return 2;
  }

  // Before any thread starts: every thread inherits the mask; main waits for the signals.
  const sigset_t stop = segwan::BlockStopSignals();

  Controller controller(store->get(), connector->get(),
                        {.device_token = *dev_token,
                         .auto_enable = c.auto_enable,
                         .heartbeat = std::chrono::milliseconds(c.heartbeat_ms),
                         .aggregate_interval_ms = c.aggregate_interval_s * 1000,
                         .poll_interval = std::chrono::milliseconds(c.poll_interval_ms),
                         .retention_ms = c.retention_days * 86'400'000LL});
  controller.SetOperatorToken(*op_token);

  RegistrationService registration(&controller);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(c.grpc_listen.ToString(), *server_creds, &grpc_port);
  builder.RegisterService(&registration);
  auto grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    SEGWAN_LOG(kError, "main") << "--grpc-listen: cannot listen on " << c.grpc_listen.ToString();
    return 1;
  }
  RestServer rest(&controller, c.web_root.empty() ? DefaultWebRoot() : c.web_root);
  auto http_port = rest.Start(c.http_listen.host, c.http_listen.port);
  if (!http_port) {
    SEGWAN_LOG(kError, "main") << http_port.error().ToString();
    grpc_server->Shutdown();
    return 1;
  }
  controller.Start();
  SEGWAN_LOG(kInfo, "main") << "edge-os " << segwan::Version() << ": REST on " << c.http_listen.ToString()
                            << ", Registration on " << c.grpc_listen.ToString()
                            << (c.tls_cert.empty() ? " (plaintext)" : " (TLS)") << ", data in " << c.db_path;
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
  auto config = ControllerConfigFromFlags(flags);
  if (!config) {
    std::fprintf(stderr, "edge-os: %s\n", config.error().ToString().c_str());
    return 2;
  }
  return Run(*config);
}
