#include "edge-manager/agent/api_guard.h"

#include <cstdio>
#include <sys/wait.h>

namespace segwan::edge {

namespace {

// Runs `nft -f -` with `script` on its standard input; the exit status says whether it took.
bool RunNft(const std::string& script) {
  FILE* p = popen("nft -f - 2>/dev/null", "w");
  if (!p) return false;
  const bool written = std::fwrite(script.data(), 1, script.size(), p) == script.size();
  const int status = pclose(p);
  return written && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

ApiGuard::ApiGuard(int port, std::vector<std::string> mgmt_interfaces)
    : port_(port), mgmt_(std::move(mgmt_interfaces)) {}

ApiGuard::~ApiGuard() {
  if (installed_) RunNft("delete table " + Table() + "\n");
}

std::string ApiGuard::Table() const { return "inet segwan_api_" + std::to_string(port_); }

std::string ApiGuard::Script() const {
  std::string allowed = "\"lo\"";
  for (const auto& m : mgmt_) allowed += ", \"" + m + "\"";
  // Declaring the table first makes the delete succeed whether or not it existed.
  return "table " + Table() + " {}\n" + "delete table " + Table() + "\n" + "table " + Table() +
         " {\n"
         "  chain input {\n"
         "    type filter hook input priority filter - 5; policy accept;\n"
         "    tcp dport " +
         std::to_string(port_) + " iifname != { " + allowed +
         " } counter reject with tcp reset\n"
         "  }\n"
         "}\n";
}

Status ApiGuard::Install() {
  if (mgmt_.empty()) {
    return Error{"no --mgmt interface: the API answers on every interface (mutual TLS still refuses strangers)", "", 0};
  }
  for (const auto& m : mgmt_) {
    if (m.find_first_of("\"\\ \n") != std::string::npos) return Error{"bad interface name " + m, "--mgmt", 0};
  }
  if (!RunNft(Script())) {
    return Error{"nft refused the API guard (is nftables installed?): the API answers on every interface", "", 0};
  }
  installed_ = true;
  return Status::Ok();
}

}  // namespace segwan::edge
