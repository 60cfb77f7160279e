#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/store/store.h"
#include "edge-os/trust/ca.h"
#include "segwan/pki.h"
#include "segwan/result.h"

namespace segwan::controller {

struct TrustOptions {
  std::chrono::seconds join_token_lifetime{24 * 3600};
  std::chrono::seconds device_certificate_lifetime{30 * 24 * 3600};
  std::chrono::seconds operator_certificate_lifetime{12 * 3600};
};

struct JoinToken {
  std::string device_id;
  std::string token;  // shown once; the store keeps its SHA-256
  int64_t expires_ms = 0;
};

// Which devices may speak to the controller, and as whom. The operator names a device and
// gets a one-time join token for it; the device enrols with that token and a CSR and gets a
// certificate naming it; from then on its identity is what its certificate says, checked on
// every call against the certificates issued to it (so revoking takes effect at once, with
// nothing restarted). Thread-safe; Error.code is the HTTP status of the refusal.
class DeviceTrust {
 public:
  DeviceTrust(Store* store, CertificateAuthority* ca, TrustOptions options = {});

  // ---- operator
  // A join token for `device_id`; a pending token is replaced. Refused (409) while the device
  // holds a valid certificate: revoke it first.
  Result<JoinToken> CreateJoinToken(const std::string& device_id);
  // Forgets the device's certificates and token: its calls are refused from now on.
  // NotFound (404) when nothing is known of it.
  Status Revoke(const std::string& device_id);
  std::vector<Enrolment> Enrolments() const;
  // A short-lived certificate for an operator's tool (segwan-edgectl) to call the agents.
  Result<CertificateAuthority::Issued> IssueOperatorCertificate(const std::string& csr_pem);

  // ---- southbound
  // The join token is checked and spent, whatever happens next; the CSR's key gets the cert.
  Result<CertificateAuthority::Issued> Enroll(const std::string& device_id, const std::string& token,
                                              const std::string& csr_pem);
  // A new certificate for the same device, asked with its current one.
  Result<CertificateAuthority::Issued> Renew(const pki::CertInfo& peer, const std::string& csr_pem);
  // The device a verified peer certificate speaks for: one this CA issued to an enrolled
  // device, not revoked, not expired. 401 otherwise.
  Result<std::string> Authorise(const pki::CertInfo& peer) const;

  const std::string& ca_pem() const { return ca_->ca_pem(); }
  // What went wrong reading the store at construction (nothing is trusted then).
  const std::optional<Error>& load_error() const { return load_error_; }

 private:
  Store* store_;
  CertificateAuthority* ca_;
  TrustOptions o_;
  mutable std::mutex mu_;  // guards enrolments_; never held across a network call
  std::map<std::string, Enrolment> enrolments_;
  std::optional<Error> load_error_;
};

}  // namespace segwan::controller
