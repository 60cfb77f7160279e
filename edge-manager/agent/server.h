#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "edge-manager/agent/config.h"
#include "segwan/result.h"
#include "segwan/tls.h"

namespace segwan::edge {

using segwan::ClientCertificates;  // segwan/tls.h
using segwan::MtlsChannel;
using segwan::MtlsChannelCredentials;
using segwan::MtlsServerCredentials;
using segwan::RequirePeerNames;
using segwan::TlsIdentity;

// Runs the agent until SIGINT/SIGTERM: opens the dataplane, picks the slice mode, restores
// saved slices and serves the EdgeManager API. Returns the process exit code.
int RunAgent(const AgentConfig& config);

}  // namespace segwan::edge
