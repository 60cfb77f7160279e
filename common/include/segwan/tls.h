#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "segwan/result.h"

namespace segwan {

// TLS for a gRPC server and its clients, the same for the agent and the controller. All empty
// = plaintext, meant for closed management networks such as the lab's.
struct TlsConfig {
  std::string cert_file;  // this side's certificate (PEM)
  std::string key_file;   // its private key (PEM)
  std::string ca_file;    // CA that signed the peers' certificates
  bool enabled() const { return !cert_file.empty() || !ca_file.empty(); }
};

// Server and channel credentials: plaintext when nothing is set; with a CA, peers must present
// a certificate it signed (mutual TLS). Errors name the flag of the file that cannot be read.
Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsConfig& tls);
Result<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const TlsConfig& tls);

// A whole file; the error names `flag`.
Result<std::string> ReadTextFile(const std::string& path, const std::string& flag);

}  // namespace segwan
