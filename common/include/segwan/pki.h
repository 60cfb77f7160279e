#pragma once

// The pieces of X.509 both programs need (OpenSSL): keys and certificate requests made where
// the key lives, certificates read back, and the names that carry an identity.
//
// Identities are DNS names in the certificate's subjectAltName, under a name space nobody
// else resolves: the controller is "controller.segwan", an operator "operator.segwan", and the
// device DEVICE-ID is "DEVICE-ID.edge.segwan". The controller's CA sets these names itself;
// nothing a requester puts in a CSR reaches a certificate but its public key.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "segwan/result.h"

namespace segwan::pki {

inline constexpr const char* kControllerName = "controller.segwan";
inline constexpr const char* kOperatorName = "operator.segwan";
inline constexpr const char* kDeviceSuffix = ".edge.segwan";

std::string DeviceName(const std::string& device_id);
// The device id a name carries, if it is a device's name.
std::optional<std::string> DeviceIdOf(const std::string& dns_name);

// A new EC P-256 private key, PEM (PKCS#8).
Result<std::string> GenerateKey();
// A certificate signing request for `key_pem`, signed with it; the subject is only a hint.
Result<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name);
// The public key of a request whose self-signature holds, PEM; the error says what is wrong.
Result<std::string> CsrPublicKey(const std::string& csr_pem);

struct CertInfo {
  std::string common_name;
  std::vector<std::string> dns_names;  // subjectAltName DNS entries
  std::string serial;                  // hex, upper case
  int64_t not_before_s = 0, not_after_s = 0;  // Unix seconds
  bool is_ca = false;
  bool Names(const std::string& dns) const;
};
Result<CertInfo> ReadCertificate(const std::string& pem);
// True when the certificate `cert_pem` carries the public key of `key_pem`.
bool KeyMatches(const std::string& cert_pem, const std::string& key_pem);

}  // namespace segwan::pki
