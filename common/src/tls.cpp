#include "segwan/tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

namespace segwan {

Result<std::string> ReadTextFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return FieldError(flag, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsConfig& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  auto cert = ReadTextFile(tls.cert_file, "--tls-cert");
  if (!cert) return cert.error();
  auto key = ReadTextFile(tls.key_file, "--tls-key");
  if (!key) return key.error();
  grpc::SslServerCredentialsOptions opts(
      tls.ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!tls.ca_file.empty()) {
    auto ca = ReadTextFile(tls.ca_file, "--tls-ca");
    if (!ca) return ca.error();
    opts.pem_root_certs = *ca;
  }
  opts.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(opts);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const TlsConfig& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions opts;
  if (!tls.ca_file.empty()) {
    auto ca = ReadTextFile(tls.ca_file, "--tls-ca");
    if (!ca) return ca.error();
    opts.pem_root_certs = *ca;
  }
  if (!tls.cert_file.empty()) {
    auto cert = ReadTextFile(tls.cert_file, "--tls-cert");
    if (!cert) return cert.error();
    auto key = ReadTextFile(tls.key_file, "--tls-key");
    if (!key) return key.error();
    opts.pem_cert_chain = *cert;
    opts.pem_private_key = *key;
  }
  return grpc::SslCredentials(opts);
}

}  // namespace segwan
