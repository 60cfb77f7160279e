#pragma once

#include <string>
#include <vector>

#include "segwan/result.h"

namespace segwan::edge {

// Keeps the agent's API out of reach of everything but the management network: an nftables
// table of its own (inet segwan_api_PORT) resets TCP connections to the API port that arrive
// on any interface other than the management ones and the loopback. A site host therefore
// cannot even open a connection, whatever address of the router it dials (Linux answers for
// all its addresses on every interface). Removed again when the guard is destroyed.
class ApiGuard {
 public:
  ApiGuard(int port, std::vector<std::string> mgmt_interfaces);
  ~ApiGuard();
  ApiGuard(const ApiGuard&) = delete;
  ApiGuard& operator=(const ApiGuard&) = delete;

  // Error when there is no management interface to allow or nft refuses: the API then stays
  // reachable from every interface (mutual TLS still refuses strangers).
  Status Install();

 private:
  std::string Script() const;  // what Install feeds to `nft -f -`
  std::string Table() const;
  int port_;
  std::vector<std::string> mgmt_;
  bool installed_ = false;
};

}  // namespace segwan::edge
