#include "edge-os/trust/device_trust.h"

#include <algorithm>
#include <ctime>

#include "edge-os/controller/errors.h"
#include "edge-os/controller/tokens.h"
#include "segwan/clock.h"
#include "segwan/log.h"
#include "segwan/net.h"

namespace segwan::controller {

namespace {

int64_t NowS() { return static_cast<int64_t>(std::time(nullptr)); }

bool HasValidCertificate(const Enrolment& e, int64_t now_s) {
  return std::any_of(e.certificates.begin(), e.certificates.end(),
                     [&](const IssuedCertificate& c) { return c.not_after_s > now_s; });
}

// Certificates past their end are of no use to anyone: dropped whenever the entry changes.
void DropExpired(Enrolment& e, int64_t now_s) {
  std::erase_if(e.certificates, [&](const IssuedCertificate& c) { return c.not_after_s <= now_s; });
}

constexpr size_t kMaxCsrBytes = 16 * 1024;

}  // namespace

DeviceTrust::DeviceTrust(Store* store, CertificateAuthority* ca, TrustOptions options)
    : store_(store), ca_(ca), o_(options) {
  auto stored = store_->Enrolments();
  if (!stored) {
    load_error_ = stored.error();
    return;
  }
  for (auto& e : *stored) enrolments_[e.device_id] = std::move(e);
}

Result<JoinToken> DeviceTrust::CreateJoinToken(const std::string& device_id) {
  if (!IsValidIdentifier(device_id)) return ApiError(kBadRequest, "id", "must match [a-z0-9][a-z0-9-]{0,62}");
  std::lock_guard lock(mu_);
  Enrolment e;
  if (auto it = enrolments_.find(device_id); it != enrolments_.end()) {
    if (HasValidCertificate(it->second, NowS())) {
      return ApiError(kConflict, "id", "device '" + device_id + "' is enrolled; revoke it (DELETE) before it enrols again");
    }
    e = it->second;
  }
  JoinToken t{device_id, RandomHex(24), NowUtcMs() + o_.join_token_lifetime.count() * 1000};
  e.device_id = device_id;
  e.token_sha256 = Sha256Hex(t.token);
  e.token_expires_ms = t.expires_ms;
  e.created_ms = NowUtcMs();
  e.certificates.clear();
  if (auto st = store_->PutEnrolment(e); !st) return st.error();
  enrolments_[device_id] = e;
  SEGWAN_LOG(kInfo, "trust") << "join token for device " << device_id << " (valid until " << IsoTime(t.expires_ms) << ")";
  return t;
}

Status DeviceTrust::Revoke(const std::string& device_id) {
  std::lock_guard lock(mu_);
  auto it = enrolments_.find(device_id);
  if (it == enrolments_.end()) return ApiError(kNotFound, "id", "no enrolment for device '" + device_id + "'");
  if (auto st = store_->DeleteEnrolment(device_id); !st) return st.error();
  enrolments_.erase(it);
  SEGWAN_LOG(kInfo, "trust") << "device " << device_id << " revoked: its certificates are refused from now on";
  return Status::Ok();
}

std::vector<Enrolment> DeviceTrust::Enrolments() const {
  std::lock_guard lock(mu_);
  std::vector<Enrolment> out;
  for (const auto& [id, e] : enrolments_) out.push_back(e);
  return out;
}

Result<CertificateAuthority::Issued> DeviceTrust::IssueOperatorCertificate(const std::string& csr_pem) {
  if (csr_pem.size() > kMaxCsrBytes) return ApiError(kBadRequest, "csr", "larger than 16 KiB");
  auto issued = ca_->Sign(csr_pem, pki::kOperatorName, o_.operator_certificate_lifetime);
  if (!issued) return ApiError(kBadRequest, "csr", issued.error().message);
  SEGWAN_LOG(kInfo, "trust") << "operator certificate " << issued->serial << " issued";
  return issued;
}

Result<CertificateAuthority::Issued> DeviceTrust::Enroll(const std::string& device_id, const std::string& token,
                                                         const std::string& csr_pem) {
  if (csr_pem.size() > kMaxCsrBytes) return ApiError(kBadRequest, "csr", "larger than 16 KiB");
  std::lock_guard lock(mu_);
  auto it = enrolments_.find(device_id);
  // One answer for every refusal, so a caller learns nothing about which ids exist.
  const auto refused = ApiError(kUnauthenticated, "join_token", "not a valid join token for device '" + device_id + "'");
  if (it == enrolments_.end() || it->second.token_sha256.empty()) return refused;
  Enrolment& e = it->second;
  if (!SameSecret(Sha256Hex(token), e.token_sha256)) return refused;
  // Spent now, used or not: a token is good for one attempt with the right secret. The
  // change is worked on a copy and kept only once the store has it.
  Enrolment next = e;
  next.token_sha256.clear();
  const bool expired = next.token_expires_ms < NowUtcMs();
  Result<CertificateAuthority::Issued> issued =
      expired ? Result<CertificateAuthority::Issued>(ApiError(kUnauthenticated, "join_token",
                                                              "the join token for device '" + device_id + "' has expired"))
              : ca_->Sign(csr_pem, pki::DeviceName(device_id), o_.device_certificate_lifetime);
  if (issued) {
    DropExpired(next, NowS());
    next.certificates.push_back({issued->serial, issued->not_after_s, NowUtcMs()});
  }
  if (auto st = store_->PutEnrolment(next); !st) return st.error();
  e = next;
  if (!issued) return issued.error().code ? issued.error() : ApiError(kBadRequest, "csr", issued.error().message);
  SEGWAN_LOG(kInfo, "trust") << "device " << device_id << " enrolled (certificate " << issued->serial << ")";
  return issued;
}

Result<CertificateAuthority::Issued> DeviceTrust::Renew(const pki::CertInfo& peer, const std::string& csr_pem) {
  auto id = Authorise(peer);
  if (!id) return id.error();
  if (csr_pem.size() > kMaxCsrBytes) return ApiError(kBadRequest, "csr", "larger than 16 KiB");
  auto issued = ca_->Sign(csr_pem, pki::DeviceName(*id), o_.device_certificate_lifetime);
  if (!issued) return ApiError(kBadRequest, "csr", issued.error().message);
  std::lock_guard lock(mu_);
  auto it = enrolments_.find(*id);
  if (it == enrolments_.end()) return ApiError(kUnauthenticated, "", "device '" + *id + "' was revoked meanwhile");
  Enrolment next = it->second;
  DropExpired(next, NowS());
  next.certificates.push_back({issued->serial, issued->not_after_s, NowUtcMs()});
  if (auto st = store_->PutEnrolment(next); !st) return st.error();
  it->second = std::move(next);
  SEGWAN_LOG(kInfo, "trust") << "device " << *id << " renewed its certificate (" << issued->serial << ")";
  return issued;
}

Result<std::string> DeviceTrust::Authorise(const pki::CertInfo& peer) const {
  std::optional<std::string> id;
  for (const auto& n : peer.dns_names) {
    if (auto d = pki::DeviceIdOf(n)) id = d;
  }
  if (!id) return ApiError(kUnauthenticated, "", "the client certificate names no device");
  std::lock_guard lock(mu_);
  auto it = enrolments_.find(*id);
  const int64_t now = NowS();
  if (it != enrolments_.end()) {
    for (const auto& c : it->second.certificates) {
      if (c.serial == peer.serial && c.not_after_s > now) return *id;
    }
  }
  return ApiError(kUnauthenticated, "", "certificate " + peer.serial + " of device '" + *id + "' is revoked or unknown");
}

}  // namespace segwan::controller
