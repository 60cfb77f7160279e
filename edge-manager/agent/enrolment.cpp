#include "edge-manager/agent/enrolment.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "segwan/files.h"
#include "segwan/log.h"
#include "segwan/pki.h"
#include "segwan/v1/registration.grpc.pb.h"

namespace segwan::edge {

namespace pb = segwan::v1;

TlsIdentity IdentityIn(const std::string& tls_dir) {
  return {tls_dir + "/key.pem", tls_dir + "/cert.pem", tls_dir + "/ca.pem"};
}

bool Enrolled(const std::string& tls_dir, const std::string& device_id) {
  const auto id = IdentityIn(tls_dir);
  auto key = ReadTextFile(id.key_file, "key");
  auto cert = ReadTextFile(id.cert_file, "certificate");
  if (!key || !cert || !ReadTextFile(id.ca_file, "ca")) return false;
  auto info = pki::ReadCertificate(*cert);
  return info && info->Names(pki::DeviceName(device_id)) && info->not_after_s > std::time(nullptr) &&
         pki::KeyMatches(*cert, *key);
}

Status Enrol(const EnrolRequest& r) {
  if (r.ca_file.empty()) return FieldError("--ca-file", "is required to enrol (the controller's CA certificate)");
  if (r.join_token_file.empty()) return FieldError("--join-token-file", "is required to enrol");
  auto token = ReadFirstLine(r.join_token_file);
  if (!token || token->empty()) return FieldError("--join-token-file", "cannot read " + r.join_token_file);
  auto ca = ReadTextFile(r.ca_file, "--ca-file");
  if (!ca) return ca.error();
  if (auto info = pki::ReadCertificate(*ca); !info || !info->is_ca) {
    return FieldError("--ca-file", r.ca_file + " is not a CA certificate");
  }
  // The folder and its parents (a new state folder): the key never sits where others read.
  std::error_code ec;
  std::filesystem::create_directories(r.tls_dir, ec);
  if (ec || chmod(r.tls_dir.c_str(), 0700) != 0) {
    return FieldError("--tls-dir", "cannot create " + r.tls_dir + ": " + (ec ? ec.message() : std::string(strerror(errno))));
  }
  const auto id = IdentityIn(r.tls_dir);
  auto key = ReadTextFile(id.key_file, "key");
  if (!key || !pki::MakeCsr(*key, r.device_id)) {
    auto fresh = pki::GenerateKey();
    if (!fresh) return fresh.error();
    if (auto st = WriteFileAtomic(id.key_file, *fresh, 0600); !st) return st;
    key = *fresh;
  }
  auto csr = pki::MakeCsr(*key, r.device_id);
  if (!csr) return csr.error();
  auto creds = MtlsChannelCredentials(TlsIdentity{.ca_file = r.ca_file});
  if (!creds) return creds.error();
  auto stub = pb::Registration::NewStub(MtlsChannel(r.controller, *creds, pki::kControllerName));
  pb::EnrollRequest req;
  req.set_device_id(r.device_id);
  req.set_join_token(*token);
  req.set_csr(*csr);
  pb::EnrollResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + r.deadline);
  auto st = stub->Enroll(&ctx, req, &resp);
  if (!st.ok()) return Error{"enrolment: " + st.error_message(), "", static_cast<int>(st.error_code())};
  auto info = pki::ReadCertificate(resp.certificate());
  if (!info || !info->Names(pki::DeviceName(r.device_id)) || !pki::KeyMatches(resp.certificate(), *key)) {
    return Error{"enrolment: the controller answered with a certificate that is not this device's", "", 0};
  }
  // The CA first: a certificate without its CA next to it is not an enrolment.
  if (auto w = WriteFileAtomic(id.ca_file, *ca, 0644); !w) return w;
  if (auto w = WriteFileAtomic(id.cert_file, resp.certificate(), 0644); !w) return w;
  SEGWAN_LOG(kInfo, "enrolment") << "enrolled as " << r.device_id << " (certificate " << info->serial
                                 << ", valid until " << info->not_after_s << ")";
  return Status::Ok();
}

CertificateRenewer::CertificateRenewer(std::shared_ptr<grpc::Channel> channel, std::string tls_dir,
                                       std::chrono::milliseconds check_every)
    : CertificateRenewer(std::vector<std::shared_ptr<grpc::Channel>>{std::move(channel)}, std::move(tls_dir),
                         check_every) {}

CertificateRenewer::CertificateRenewer(std::vector<std::shared_ptr<grpc::Channel>> channels, std::string tls_dir,
                                       std::chrono::milliseconds check_every)
    : channels_(std::move(channels)), tls_dir_(std::move(tls_dir)), every_(check_every) {}

CertificateRenewer::~CertificateRenewer() { Stop(); }

void CertificateRenewer::Start() {
  thread_ = std::thread([this] {
    auto wait = every_;
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, wait, [&] { return stop_; })) {
      lock.unlock();
      auto r = RenewIfDue();
      if (!r) SEGWAN_LOG(kWarn, "enrolment") << "certificate renewal: " << r.error().message << " (will retry)";
      // A failure is retried sooner than the regular check, never in a tight loop.
      wait = r ? every_ : std::min<std::chrono::milliseconds>(every_, std::chrono::seconds(30));
      lock.lock();
    }
  });
}

void CertificateRenewer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<bool> CertificateRenewer::RenewIfDue() {
  const auto id = IdentityIn(tls_dir_);
  auto cert = ReadTextFile(id.cert_file, "certificate");
  auto key = ReadTextFile(id.key_file, "key");
  if (!cert || !key) return Error{"no certificate in " + tls_dir_, "", 0};
  auto info = pki::ReadCertificate(*cert);
  if (!info) return info.error();
  const int64_t now = std::time(nullptr);
  const int64_t lifetime = info->not_after_s - info->not_before_s;
  if (info->not_after_s - now > lifetime / 3) return false;
  auto csr = pki::MakeCsr(*key, info->common_name);
  if (!csr) return csr.error();
  pb::RenewCertificateRequest req;
  req.set_csr(*csr);
  pb::RenewCertificateResponse resp;
  grpc::Status st;
  for (const auto& channel : channels_) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    st = pb::Registration::NewStub(channel)->RenewCertificate(&ctx, req, &resp);
    if (st.ok()) break;
  }
  if (!st.ok()) return Error{st.error_message(), "", static_cast<int>(st.error_code())};
  auto fresh = pki::ReadCertificate(resp.certificate());
  if (!fresh || fresh->dns_names != info->dns_names || !pki::KeyMatches(resp.certificate(), *key)) {
    return Error{"the controller answered with a certificate that is not this device's", "", 0};
  }
  if (auto w = WriteFileAtomic(id.cert_file, resp.certificate(), 0644); !w) return w.error();
  SEGWAN_LOG(kInfo, "enrolment") << "certificate renewed (" << fresh->serial << ")";
  return true;
}

}  // namespace segwan::edge
