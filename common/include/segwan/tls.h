#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "segwan/pki.h"
#include "segwan/result.h"

namespace segwan {

// A program's TLS identity as three PEM files: its private key, its certificate and the CA
// that signs its peers' certificates (the controller's CA on both sides). The files are
// watched: a renewed certificate written in place (WriteFileAtomic) is used for new
// connections within kTlsReloadSeconds, with nothing restarted.
struct TlsIdentity {
  std::string key_file;   // empty with cert_file: no identity of its own (enrolment)
  std::string cert_file;
  std::string ca_file;
  bool has_identity() const { return !cert_file.empty(); }
};
inline constexpr unsigned kTlsReloadSeconds = 2;

enum class ClientCertificates {
  kRequire,   // every client presents a certificate from the CA (the agent)
  kOptional,  // verified when presented; the service decides per call (the controller:
              // enrolment is the only call without one)
};

// Server credentials for mutual TLS. `authorise`, when given, sees every call before its
// handler (see RequirePeerNames).
Result<std::shared_ptr<grpc::ServerCredentials>> MtlsServerCredentials(
    const TlsIdentity& id, ClientCertificates clients,
    std::shared_ptr<grpc::AuthMetadataProcessor> authorise = nullptr);

// Channel credentials for mutual TLS: they present `id`'s certificate when it has one and
// verify the server's against the CA.
Result<std::shared_ptr<grpc::ChannelCredentials>> MtlsChannelCredentials(const TlsIdentity& id);
// A channel to `target` that accepts only a server whose certificate names `peer_name`
// (pki::kControllerName, pki::DeviceName(id)).
std::shared_ptr<grpc::Channel> MtlsChannel(const std::string& target,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                           const std::string& peer_name, grpc::ChannelArguments args = {});

// The certificate the peer of a call presented and the handshake verified; nothing on a
// plaintext connection or when the client sent none.
std::optional<pki::CertInfo> PeerCertificate(const grpc::AuthContext& ctx);

// Refuses (UNAUTHENTICATED) every call whose peer certificate names none of `names`.
std::shared_ptr<grpc::AuthMetadataProcessor> RequirePeerNames(std::vector<std::string> names);

// Several controllers share one PostgreSQL; one leads, and each new leader has a greater
// epoch, which it sends with every call to an edge in this metadata entry (decimal).
inline constexpr const char* kLeaderEpochMetadata = "segwan-epoch";

// An edge's memory of the greatest leader epoch it has seen (in calls, or in a registration's
// answer). A call with an older epoch comes from a controller that lost the lead without
// knowing it yet (a stalled process): refused, it cannot undo its successor's work. A call
// without an epoch (a controller on SQLite, an operator's tool) is not fenced.
class LeaderFence {
 public:
  // Whether a call carrying `epoch` may proceed; the greatest admitted is remembered.
  bool Admit(uint64_t epoch);
  uint64_t epoch() const { return max_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> max_{0};
};

// `names` (see RequirePeerNames), then the fence: a call whose epoch is older than the
// greatest seen is refused with FAILED_PRECONDITION, a malformed one with INVALID_ARGUMENT.
std::shared_ptr<grpc::AuthMetadataProcessor> FenceLeaderEpochs(std::shared_ptr<grpc::AuthMetadataProcessor> names,
                                                               std::shared_ptr<LeaderFence> fence);

// A whole file; the error names `flag`.
// Debian's Abseil is built with its debug checks on: every mutex gRPC takes also walks a
// global lock-order graph (a few percent of a busy controller's CPU, and one more lock shared
// by all threads). The daemons turn that walk off at start; tests keep it.
void DisableMutexDeadlockDetection();

Result<std::string> ReadTextFile(const std::string& path, const std::string& flag);

}  // namespace segwan
