#include "edge-os/controller/tokens.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "segwan/log.h"

namespace segwan::controller {

namespace fs = std::filesystem;

Result<std::string> LoadOrCreateToken(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    const auto dir = fs::path(path).parent_path();
    if (!dir.empty()) {
      fs::create_directories(dir, ec);
      if (ec) return Error{"cannot create " + dir.string() + ": " + ec.message(), "", ec.value()};
    }
    unsigned char b[24];
    RAND_bytes(b, sizeof b);
    static const char* d = "0123456789abcdef";
    std::string token;
    for (unsigned char c : b) {
      token += d[c >> 4];
      token += d[c & 15];
    }
    const mode_t old = umask(077);
    std::ofstream out(path);
    out << token << "\n";
    umask(old);
    if (!out) return Error{"cannot write " + path, "", 0};
    SEGWAN_LOG(kInfo, "main") << "created a new token in " << path;
    return token;
  }
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return Error{path + " holds no token", "", 0};
  return token;
}

std::string DefaultWebRoot() {
  const char* installed = "/usr/share/segwan/web";
  std::error_code ec;
  if (fs::is_directory(installed, ec)) return installed;
  return SEGWAN_SOURCE_WEB_ROOT;
}

}  // namespace segwan::controller
