#pragma once

// OpenSSL objects with owners, and OpenSSL's error as an Error: shared by the X.509 code of
// both programs (segwan/pki.h) and the controller's CA. Not a general wrapper.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "segwan/result.h"

namespace segwan::ossl {

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Req = std::unique_ptr<X509_REQ, Free<X509_REQ, X509_REQ_free>>;
using Cert = std::unique_ptr<X509, Free<X509, X509_free>>;

// "what: OpenSSL's reason", clearing OpenSSL's error queue.
inline Error LastError(const std::string& what) {
  const unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Error{what + ": " + buf, "", 0};
}

// A read-only memory BIO over `pem` (which must outlive it), and a memory BIO's contents.
inline Bio ReadBio(const std::string& pem) { return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }
inline std::string BioText(BIO* b) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(b, &mem);
  return mem ? std::string(mem->data, mem->length) : std::string();
}

}  // namespace segwan::ossl
