#pragma once

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "segwan/result.h"

namespace segwan::controller {

// Reads the first line of a token file; when the file does not exist, creates it (mode 0600,
// parent folders 0700) with a fresh random token. An empty or unreadable file is an error.
Result<std::string> LoadOrCreateToken(const std::string& path);

// Plaintext when cert and key are empty; TLS otherwise, requiring client certificates signed
// by `ca` when it is given.
Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const std::string& cert,
                                                                   const std::string& key,
                                                                   const std::string& ca);

// Where the dashboard's files are when --web-root is not given: the installed copy, else the
// source tree this binary was built from.
std::string DefaultWebRoot();

}  // namespace segwan::controller
