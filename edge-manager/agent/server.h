#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "edge-manager/agent/config.h"
#include "segwan/result.h"

namespace segwan::edge {

// Server and channel credentials from the TLS settings: plaintext when none are given; with a
// CA, peers must present a certificate it signed (mutual TLS).
Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsConfig& tls);
Result<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const TlsConfig& tls);

// Runs the agent until SIGINT/SIGTERM: opens the dataplane, picks the slice mode, restores
// saved slices and serves the EdgeManager API. Returns the process exit code.
int RunAgent(const AgentConfig& config);

}  // namespace segwan::edge
