#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "segwan/result.h"

namespace segwan::controller {

// The controller's own certificate authority (OpenSSL). It signs the certificates of the
// controller itself, of enrolled devices and of operators' tools, each for one identity name
// (segwan/pki.h) that the CA sets: a request contributes its public key and nothing else.
// Its key lives in the data folder with mode 0600 and never leaves it.
class CertificateAuthority {
 public:
  // Reads DIR/ca.key and DIR/ca.pem, or makes them (EC P-256, 10 years) when both are absent.
  // One without the other, or a pair that does not match, is an error naming the file.
  static Result<std::unique_ptr<CertificateAuthority>> LoadOrCreate(const std::string& dir);
  ~CertificateAuthority();
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  struct Issued {
    std::string pem;
    std::string serial;  // hex, upper case, as pki::ReadCertificate reads it
    int64_t not_after_s = 0;
  };
  // A certificate for `csr_pem`'s key naming `dns_name`, valid for `lifetime` (from five
  // minutes ago, for clocks that lag). Usable as a TLS server and a TLS client certificate.
  Result<Issued> Sign(const std::string& csr_pem, const std::string& dns_name,
                      std::chrono::seconds lifetime) const;

  // The controller's own key and certificate in DIR (controller.key, controller.pem): made
  // on first use and made again when missing, not ours, or within `renew_before` of expiry.
  Status EnsureOwnCertificate(const std::string& dir, std::chrono::seconds lifetime,
                              std::chrono::seconds renew_before) const;

  const std::string& ca_pem() const { return ca_pem_; }
  const std::string& ca_file() const { return ca_file_; }

 private:
  struct Keys;
  CertificateAuthority(std::unique_ptr<Keys> keys, std::string pem, std::string file);
  std::unique_ptr<Keys> keys_;
  std::string ca_pem_, ca_file_;
};

}  // namespace segwan::controller
