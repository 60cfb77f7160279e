#pragma once

#include <memory>
#include <string>

#include "segwan/result.h"

namespace segwan::controller {

// Secrets: `bytes` random bytes as hex (OpenSSL's RAND_bytes), and the SHA-256 of a string as
// hex (tenant tokens are kept only as that).
std::string RandomHex(size_t bytes);
std::string Sha256Hex(const std::string& s);
// Constant-time comparison of two secrets.
bool SameSecret(const std::string& a, const std::string& b);

// Reads the first line of a token file; when the file does not exist, creates it (mode 0600,
// parent folders 0700) with a fresh random token. An empty or unreadable file is an error.
Result<std::string> LoadOrCreateToken(const std::string& path);

// Where the dashboard's files are when --web-root is not given: the installed copy, else the
// build tree this binary came from (web/ assembles it there).
std::string DefaultWebRoot();

}  // namespace segwan::controller
