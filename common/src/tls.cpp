#include "segwan/tls.h"

#include <absl/synchronization/mutex.h>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace segwan {

namespace ex = grpc::experimental;

Result<std::string> ReadTextFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return FieldError(flag, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// The files must be there and readable now: gRPC's watcher would only log the problem.
Status CheckReadable(const TlsIdentity& id) {
  if (auto ca = ReadTextFile(id.ca_file, "ca"); !ca) return ca.error();
  if (id.has_identity()) {
    if (auto c = ReadTextFile(id.cert_file, "certificate"); !c) return c.error();
    if (auto k = ReadTextFile(id.key_file, "key"); !k) return k.error();
  }
  return Status::Ok();
}

std::shared_ptr<ex::CertificateProviderInterface> Provider(const TlsIdentity& id) {
  if (id.has_identity()) {
    return std::make_shared<ex::FileWatcherCertificateProvider>(id.key_file, id.cert_file, id.ca_file,
                                                                kTlsReloadSeconds);
  }
  return std::make_shared<ex::FileWatcherCertificateProvider>(id.ca_file, kTlsReloadSeconds);
}

class PeerNames final : public grpc::AuthMetadataProcessor {
 public:
  explicit PeerNames(std::vector<std::string> names) : names_(std::move(names)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata&, grpc::AuthContext* ctx, OutputMetadata*, OutputMetadata*) override {
    // Per call: the names the handshake already read from the verified certificate, not the
    // certificate parsed again.
    if (ctx && ctx->IsPeerAuthenticated()) {
      for (const auto& san : ctx->FindPropertyValues("x509_subject_alternative_name")) {
        for (const auto& n : names_) {
          if (san.size() == n.size() && std::equal(n.begin(), n.end(), san.data())) return grpc::Status::OK;
        }
      }
    }
    return {grpc::StatusCode::UNAUTHENTICATED, "this service answers the controller only"};
  }

 private:
  std::vector<std::string> names_;
};

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> MtlsServerCredentials(
    const TlsIdentity& id, ClientCertificates clients, std::shared_ptr<grpc::AuthMetadataProcessor> authorise) {
  if (!id.has_identity()) return Error{"a TLS server needs a certificate", "", 0};
  if (auto st = CheckReadable(id); !st) return st.error();
  ex::TlsServerCredentialsOptions opts(Provider(id));
  opts.watch_root_certs();
  opts.watch_identity_key_cert_pairs();
  opts.set_cert_request_type(clients == ClientCertificates::kRequire
                                 ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  auto creds = grpc::experimental::TlsServerCredentials(opts);
  if (!creds) return Error{"cannot make TLS server credentials", "", 0};
  if (authorise) creds->SetAuthMetadataProcessor(authorise);
  return creds;
}

Result<std::shared_ptr<grpc::ChannelCredentials>> MtlsChannelCredentials(const TlsIdentity& id) {
  if (auto st = CheckReadable(id); !st) return st.error();
  ex::TlsChannelCredentialsOptions opts;
  opts.set_certificate_provider(Provider(id));
  opts.watch_root_certs();
  if (id.has_identity()) opts.watch_identity_key_cert_pairs();
  opts.set_verify_server_certs(true);
  auto creds = grpc::experimental::TlsCredentials(opts);
  if (!creds) return Error{"cannot make TLS channel credentials", "", 0};
  return creds;
}

std::shared_ptr<grpc::Channel> MtlsChannel(const std::string& target,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                           const std::string& peer_name, grpc::ChannelArguments args) {
  args.SetSslTargetNameOverride(peer_name);
  return grpc::CreateCustomChannel(target, creds, args);
}

std::optional<pki::CertInfo> PeerCertificate(const grpc::AuthContext& ctx) {
  if (!ctx.IsPeerAuthenticated()) return std::nullopt;
  auto pems = ctx.FindPropertyValues("x509_pem_cert");
  if (pems.empty()) return std::nullopt;
  auto info = pki::ReadCertificate(std::string(pems.front().data(), pems.front().size()));
  if (!info) return std::nullopt;
  return *info;
}

std::shared_ptr<grpc::AuthMetadataProcessor> RequirePeerNames(std::vector<std::string> names) {
  return std::make_shared<PeerNames>(std::move(names));
}

bool LeaderFence::Admit(uint64_t epoch) {
  uint64_t seen = max_.load(std::memory_order_acquire);
  while (epoch > seen && !max_.compare_exchange_weak(seen, epoch, std::memory_order_acq_rel)) {
  }
  return epoch >= seen;
}

namespace {

class EpochFence final : public grpc::AuthMetadataProcessor {
 public:
  EpochFence(std::shared_ptr<grpc::AuthMetadataProcessor> names, std::shared_ptr<LeaderFence> fence)
      : names_(std::move(names)), fence_(std::move(fence)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& md, grpc::AuthContext* ctx, OutputMetadata* consumed,
                       OutputMetadata* response) override {
    if (auto st = names_->Process(md, ctx, consumed, response); !st.ok()) return st;
    const auto it = md.find(kLeaderEpochMetadata);
    if (it == md.end()) return grpc::Status::OK;
    uint64_t epoch = 0;
    const char* end = it->second.data() + it->second.size();
    const auto [p, ec] = std::from_chars(it->second.data(), end, epoch);
    if (ec != std::errc() || p != end || it->second.size() == 0) {
      return {grpc::StatusCode::INVALID_ARGUMENT, std::string(kLeaderEpochMetadata) + ": not a number"};
    }
    if (!fence_->Admit(epoch)) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              "controller epoch " + std::to_string(epoch) + " no longer leads: epoch " + std::to_string(fence_->epoch()) +
                  " does"};
    }
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<grpc::AuthMetadataProcessor> names_;
  std::shared_ptr<LeaderFence> fence_;
};

}  // namespace

std::shared_ptr<grpc::AuthMetadataProcessor> FenceLeaderEpochs(std::shared_ptr<grpc::AuthMetadataProcessor> names,
                                                               std::shared_ptr<LeaderFence> fence) {
  return std::make_shared<EpochFence>(std::move(names), std::move(fence));
}

void DisableMutexDeadlockDetection() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace segwan
