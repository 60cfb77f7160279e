#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "segwan/result.h"
#include "segwan/tls.h"

namespace segwan::edge {

// The agent's TLS identity in its folder: key.pem (0600, made here and never sent), cert.pem
// (from the controller's CA, naming this device) and ca.pem (the controller's CA).
TlsIdentity IdentityIn(const std::string& tls_dir);

// True when the folder holds a key, a certificate for it that names `device_id` and has not
// expired, and the CA.
bool Enrolled(const std::string& tls_dir, const std::string& device_id);

struct EnrolRequest {
  std::string device_id;
  std::string controller;       // host:port of the Registration service
  std::string ca_file;          // the controller's CA certificate, from the operator
  std::string join_token_file;  // the one-time join token, from the operator
  std::string tls_dir;
  std::chrono::milliseconds deadline{5000};
};

// One enrolment attempt: makes the key when there is none, sends a CSR with the join token
// over TLS (the controller's certificate is checked against the CA file), and keeps the
// certificate and the CA. Error.code is the gRPC status code of a refusal (0: local problem).
Status Enrol(const EnrolRequest& r);

// Renews the certificate in `tls_dir` with the controller before it expires: when less than
// a third of its lifetime is left it asks for a new one for the same key (RenewCertificate,
// over mutual TLS) and writes it in place, where the agent's TLS picks it up.
class CertificateRenewer {
 public:
  CertificateRenewer(std::shared_ptr<grpc::Channel> channel, std::string tls_dir,
                     std::chrono::milliseconds check_every = std::chrono::minutes(10));
  // Several controllers: each is asked in turn until one renews (followers refuse).
  CertificateRenewer(std::vector<std::shared_ptr<grpc::Channel>> channels, std::string tls_dir,
                     std::chrono::milliseconds check_every = std::chrono::minutes(10));
  ~CertificateRenewer();
  CertificateRenewer(const CertificateRenewer&) = delete;
  CertificateRenewer& operator=(const CertificateRenewer&) = delete;
  void Start();
  void Stop();
  // One check: renews when due. Returns whether it renewed; an error when renewing failed.
  Result<bool> RenewIfDue();

 private:
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::string tls_dir_;
  std::chrono::milliseconds every_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace segwan::edge
