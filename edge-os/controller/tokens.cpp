#include "edge-os/controller/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <cerrno>
#include <fstream>
#include <vector>

#include "segwan/files.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace fs = std::filesystem;

namespace {
std::string Hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}
}  // namespace

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  RAND_bytes(b.data(), static_cast<int>(b.size()));
  return Hex(b.data(), b.size());
}

std::string Sha256Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  return Hex(md, n);
}

bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> LoadOrCreateToken(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    const auto dir = fs::path(path).parent_path();
    if (!dir.empty()) {
      fs::create_directories(dir, ec);
      if (ec) return Error{"cannot create " + dir.string() + ": " + ec.message(), "", ec.value()};
    }
    const std::string token = RandomHex(24);
    const mode_t old = umask(077);
    std::ofstream out(path);
    out << token << "\n";
    umask(old);
    if (!out) return Error{"cannot write " + path, "", 0};
    SEGWAN_LOG(kInfo, "main") << "created a new token in " << path;
    return token;
  }
  auto token = ReadFirstLine(path);
  if (!token) return Error{"cannot read " + path, "", errno};
  if (token->empty()) return Error{path + " holds no token", "", 0};
  return *token;
}

std::string DefaultWebRoot() {
  const char* installed = "/usr/share/segwan/web";
  std::error_code ec;
  if (fs::is_directory(installed, ec)) return installed;
  return SEGWAN_SOURCE_WEB_ROOT;
}

}  // namespace segwan::controller
