#pragma once

#include <optional>
#include <string>
#include <vector>

#include "segwan/flags.h"
#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::edge {

inline constexpr const char* kDefaultListen = "[::]:50061";
inline constexpr const char* kDefaultStateDir = "/var/lib/segwan/edge";
inline constexpr const char* kDefaultSidDevice = "sr0";

// TLS for the agent's gRPC server and its client to the controller. All empty = plaintext,
// which is meant for a closed management network such as the lab's.
struct TlsConfig {
  std::string cert_file;  // this agent's certificate (PEM)
  std::string key_file;   // its private key (PEM)
  std::string ca_file;    // CA that signed the controller's (and clients') certificates
  bool enabled() const { return !cert_file.empty() || !ca_file.empty(); }
};

// Everything the agent is told at start, from flags or a config file (same names).
struct AgentConfig {
  std::string device_id;
  std::string token_file;
  std::optional<HostPort> controller;  // none: standalone, no registration
  HostPort listen;                     // EdgeManager gRPC service
  std::string advertise;               // address given to the controller; default: listen
  std::vector<std::string> wan_interfaces;
  std::vector<std::string> lan_interfaces;
  std::vector<std::string> mgmt_interfaces;
  std::optional<IpPrefix> locator;  // SID locator, IPv6
  std::string state_dir = kDefaultStateDir;
  std::string sid_device = kDefaultSidDevice;  // device SIDs hang on (created if missing)
  std::string slice_mode = "auto";             // auto, vrf or table
  TlsConfig tls;
};

void AddAgentFlags(FlagSet& flags);
// Validates and converts; the error names the flag.
Result<AgentConfig> AgentConfigFromFlags(const FlagSet& flags);

std::vector<std::string> SplitList(const std::string& text);

}  // namespace segwan::edge
