#include "segwan/pki.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "segwan/net.h"
#include "segwan/ossl.h"

namespace segwan::pki {

namespace {

using ossl::Bio;
using ossl::BioText;
using ossl::Cert;
using ossl::Key;
using ossl::ReadBio;
using ossl::Req;
using Names = std::unique_ptr<GENERAL_NAMES, ossl::Free<GENERAL_NAMES, GENERAL_NAMES_free>>;

int64_t AsnTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string PublicKeyPem(EVP_PKEY* key) {
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PUBKEY(out.get(), key) != 1) return {};
  return BioText(out.get());
}

}  // namespace

std::string DeviceName(const std::string& device_id) { return device_id + kDeviceSuffix; }

std::optional<std::string> DeviceIdOf(const std::string& dns_name) {
  const std::string suffix = kDeviceSuffix;
  if (dns_name.size() <= suffix.size() ||
      dns_name.compare(dns_name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  std::string id = dns_name.substr(0, dns_name.size() - suffix.size());
  if (!IsValidIdentifier(id)) return std::nullopt;
  return id;
}

Result<std::string> GenerateKey() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return ossl::LastError("cannot generate a key");
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl::LastError("cannot write the key");
  }
  return BioText(out.get());
}

Result<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name) {
  auto in = ReadBio(key_pem);
  Key key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key) return ossl::LastError("cannot read the private key");
  Req req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1) return ossl::LastError("cannot make a request");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) != 1) {
    return ossl::LastError("cannot name the request");
  }
  if (X509_REQ_set_pubkey(req.get(), key.get()) != 1 || X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return ossl::LastError("cannot sign the request");
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_REQ(out.get(), req.get()) != 1) return ossl::LastError("cannot write the request");
  return BioText(out.get());
}

Result<std::string> CsrPublicKey(const std::string& csr_pem) {
  auto in = ReadBio(csr_pem);
  Req req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  if (!req) return ossl::LastError("not a PEM certificate request");
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (!key) return ossl::LastError("the request has no public key");
  if (X509_REQ_verify(req.get(), key) != 1) return ossl::LastError("the request's signature does not hold");
  // Only keys worth trusting: EC P-256/P-384 or RSA of 2048 bits and more.
  const int type = EVP_PKEY_get_base_id(key);
  const int bits = EVP_PKEY_get_bits(key);
  if (!((type == EVP_PKEY_EC && bits >= 256) || (type == EVP_PKEY_RSA && bits >= 2048))) {
    return Error{"the key must be EC (P-256 or larger) or RSA (2048 bits or more)", "", 0};
  }
  auto pem = PublicKeyPem(key);
  if (pem.empty()) return ossl::LastError("cannot write the public key");
  return pem;
}

bool CertInfo::Names(const std::string& dns) const {
  for (const auto& n : dns_names) {
    if (n == dns) return true;
  }
  return false;
}

Result<CertInfo> ReadCertificate(const std::string& pem) {
  auto in = ReadBio(pem);
  Cert cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!cert) return ossl::LastError("not a PEM certificate");
  CertInfo info;
  char cn[256] = "";
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn) > 0) {
    info.common_name = cn;
  }
  Names names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
      if (g->type != GEN_DNS) continue;
      const auto* s = g->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                  static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  std::unique_ptr<BIGNUM, ossl::Free<BIGNUM, BN_free>> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    info.serial = hex ? hex : "";
    OPENSSL_free(hex);
  }
  info.not_before_s = AsnTime(X509_get0_notBefore(cert.get()));
  info.not_after_s = AsnTime(X509_get0_notAfter(cert.get()));
  info.is_ca = X509_check_ca(cert.get()) != 0;
  return info;
}

bool KeyMatches(const std::string& cert_pem, const std::string& key_pem) {
  auto cin = ReadBio(cert_pem);
  Cert cert(PEM_read_bio_X509(cin.get(), nullptr, nullptr, nullptr));
  auto kin = ReadBio(key_pem);
  Key key(PEM_read_bio_PrivateKey(kin.get(), nullptr, nullptr, nullptr));
  const bool ok = cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace segwan::pki
