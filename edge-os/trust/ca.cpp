#include "edge-os/trust/ca.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <ctime>

#include "segwan/files.h"
#include "segwan/ossl.h"
#include "segwan/pki.h"
#include "segwan/tls.h"

namespace segwan::controller {

namespace {

using ossl::Bio;
using ossl::Cert;
using ossl::Key;
using ossl::Req;

std::string Pem(X509* cert) {
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert) != 1) return {};
  return ossl::BioText(out.get());
}

bool AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate with a random 127-bit serial, valid from five minutes ago for `lifetime`.
Cert NewCert(EVP_PKEY* subject_key, const std::string& cn, X509* issuer, std::chrono::seconds lifetime) {
  Cert cert(X509_new());
  if (!cert) return nullptr;
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return nullptr;
  serial[0] &= 0x7f;  // positive
  serial[0] |= 0x40;  // and always 16 bytes long
  std::unique_ptr<BIGNUM, ossl::Free<BIGNUM, BN_free>> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) return nullptr;
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(lifetime.count()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(cert.get(), subject_key);
  return cert;
}

}  // namespace

struct CertificateAuthority::Keys {
  Key key;
  Cert cert;
};

CertificateAuthority::CertificateAuthority(std::unique_ptr<Keys> keys, std::string pem, std::string file)
    : keys_(std::move(keys)), ca_pem_(std::move(pem)), ca_file_(std::move(file)) {}
CertificateAuthority::~CertificateAuthority() = default;

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::LoadOrCreate(const std::string& dir) {
  const std::string key_file = dir + "/ca.key", cert_file = dir + "/ca.pem";
  struct stat st {};
  const bool have_key = stat(key_file.c_str(), &st) == 0;
  const bool have_cert = stat(cert_file.c_str(), &st) == 0;
  auto keys = std::make_unique<Keys>();
  if (!have_key && !have_cert) {
    keys->key.reset(EVP_EC_gen("P-256"));
    if (!keys->key) return ossl::LastError("cannot make the CA key");
    keys->cert = NewCert(keys->key.get(), "SegWAN controller CA", nullptr, std::chrono::hours(24 * 3650));
    if (!keys->cert) return ossl::LastError("cannot make the CA certificate");
    X509* c = keys->cert.get();
    if (!AddExt(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        !AddExt(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !AddExt(c, c, NID_subject_key_identifier, "hash") ||
        X509_sign(c, keys->key.get(), EVP_sha256()) <= 0) {
      return ossl::LastError("cannot sign the CA certificate");
    }
    Bio out(BIO_new(BIO_s_mem()));
    if (!out || PEM_write_bio_PrivateKey(out.get(), keys->key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
      return ossl::LastError("cannot write the CA key");
    }
    if (auto w = WriteFileAtomic(key_file, ossl::BioText(out.get()), 0600); !w) return w.error();
    const std::string pem = Pem(c);
    if (auto w = WriteFileAtomic(cert_file, pem, 0644); !w) return w.error();
    return std::unique_ptr<CertificateAuthority>(new CertificateAuthority(std::move(keys), pem, cert_file));
  }
  if (!have_key || !have_cert) {
    return Error{(have_key ? cert_file : key_file) + " is missing while " + (have_key ? key_file : cert_file) +
                     " exists: restore both from a backup, or remove both to start a new CA (every edge then enrols again)",
                 "", 0};
  }
  auto key_pem = ReadTextFile(key_file, key_file);
  if (!key_pem) return key_pem.error();
  auto cert_pem = ReadTextFile(cert_file, cert_file);
  if (!cert_pem) return cert_pem.error();
  auto kin = ossl::ReadBio(*key_pem);
  keys->key.reset(PEM_read_bio_PrivateKey(kin.get(), nullptr, nullptr, nullptr));
  if (!keys->key) return ossl::LastError(key_file + " is not a PEM private key");
  auto cin = ossl::ReadBio(*cert_pem);
  keys->cert.reset(PEM_read_bio_X509(cin.get(), nullptr, nullptr, nullptr));
  if (!keys->cert) return ossl::LastError(cert_file + " is not a PEM certificate");
  if (X509_check_private_key(keys->cert.get(), keys->key.get()) != 1) {
    ERR_clear_error();
    return Error{cert_file + " does not belong to " + key_file, "", 0};
  }
  return std::unique_ptr<CertificateAuthority>(new CertificateAuthority(std::move(keys), *cert_pem, cert_file));
}

Result<CertificateAuthority::Issued> CertificateAuthority::Sign(const std::string& csr_pem, const std::string& dns_name,
                                                                std::chrono::seconds lifetime) const {
  if (auto pub = pki::CsrPublicKey(csr_pem); !pub) return FieldError("csr", pub.error().message);
  auto in = ossl::ReadBio(csr_pem);
  Req req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  if (!req) return ossl::LastError("csr");
  Cert cert = NewCert(X509_REQ_get0_pubkey(req.get()), dns_name, keys_->cert.get(), lifetime);
  if (!cert) return ossl::LastError("cannot make the certificate");
  X509* c = cert.get();
  const std::string san = "DNS:" + dns_name;
  if (!AddExt(c, keys_->cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExt(c, keys_->cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
      !AddExt(c, keys_->cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") ||
      !AddExt(c, keys_->cert.get(), NID_subject_alt_name, san.c_str()) ||
      !AddExt(c, keys_->cert.get(), NID_subject_key_identifier, "hash") ||
      !AddExt(c, keys_->cert.get(), NID_authority_key_identifier, "keyid:always") ||
      X509_sign(c, keys_->key.get(), EVP_sha256()) <= 0) {
    return ossl::LastError("cannot sign the certificate");
  }
  Issued out;
  out.pem = Pem(c);
  auto info = pki::ReadCertificate(out.pem);
  if (!info) return info.error();
  out.serial = info->serial;
  out.not_after_s = info->not_after_s;
  return out;
}

Status CertificateAuthority::EnsureOwnCertificate(const std::string& dir, std::chrono::seconds lifetime,
                                                  std::chrono::seconds renew_before) const {
  const std::string key_file = dir + "/controller.key", cert_file = dir + "/controller.pem";
  auto key = ReadTextFile(key_file, key_file);
  auto cert = ReadTextFile(cert_file, cert_file);
  if (key && cert && pki::KeyMatches(*cert, *key)) {
    auto info = pki::ReadCertificate(*cert);
    if (info && info->Names(pki::kControllerName) &&
        info->not_after_s - static_cast<int64_t>(std::time(nullptr)) > renew_before.count()) {
      // And signed by this CA: a CA made anew makes the controller's certificate anew too.
      auto in = ossl::ReadBio(*cert);
      Cert c(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
      if (c && X509_verify(c.get(), keys_->key.get()) == 1) return Status::Ok();
      ERR_clear_error();
    }
  }
  // The key stays unless it is missing or unreadable: renewal is a new certificate.
  Result<std::string> csr = key ? pki::MakeCsr(*key, pki::kControllerName) : Result<std::string>(key.error());
  if (!csr) {
    auto fresh = pki::GenerateKey();
    if (!fresh) return fresh.error();
    if (auto w = WriteFileAtomic(key_file, *fresh, 0600); !w) return w.error();
    csr = pki::MakeCsr(*fresh, pki::kControllerName);
    if (!csr) return csr.error();
  }
  auto issued = Sign(*csr, pki::kControllerName, lifetime);
  if (!issued) return issued.error();
  return WriteFileAtomic(cert_file, issued->pem, 0644);
}

}  // namespace segwan::controller
