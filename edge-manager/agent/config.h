#pragma once

#include <optional>
#include <string>
#include <vector>

#include "segwan/flags.h"
#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::edge {

inline constexpr int kDefaultApiPort = 50061;
inline constexpr const char* kDefaultStateDir = "/var/lib/segwan/edge";
inline constexpr const char* kDefaultSidDevice = "sr0";


// Everything the agent is told at start, from flags or a config file (same names).
struct AgentConfig {
  std::string device_id;
  std::string token_file;  // --insecure: the shared registration token
  std::optional<HostPort> controller;  // the first of `controllers`; none: standalone, no registration
  std::vector<HostPort> controllers;   // every controller sharing the edge's store, tried in turn
  HostPort listen;                     // EdgeManager gRPC service
  bool listen_on_mgmt = false;         // no --listen: the management address, found at start
  std::string advertise;               // address given to the controller; default: listen
  std::vector<std::string> wan_interfaces;
  std::vector<std::string> lan_interfaces;
  std::vector<std::string> mgmt_interfaces;
  std::optional<IpPrefix> locator;  // SID locator, IPv6
  std::string state_dir = kDefaultStateDir;
  std::string sid_device = kDefaultSidDevice;  // device SIDs hang on (created if missing)
  std::string slice_mode = "auto";             // auto, vrf or table
  bool skip_kernel_check = false;              // start even when the kernel lacks a required feature
  // Mutual TLS (default): key.pem, cert.pem and ca.pem in tls_dir, from enrolment with the
  // join token and the controller's CA. `insecure`: plaintext both ways (lab only).
  bool insecure = false;
  // The user-space STAMP engine's AF_PACKET ring: about twice the reflected packets per second
  // of its sockets, but every IPv6 packet the router receives, forwarded ones too, then passes
  // a packet tap (about 10 % of forwarding on a veth, bench/stamp_forwarding). Off by default:
  // a router forwards first; on for an edge whose reflector carries heavy STAMP load.
  bool stamp_packet_ring = false;
  std::string tls_dir;
  std::string ca_file;
  std::string join_token_file;
};

void AddAgentFlags(FlagSet& flags);
// Validates and converts; the error names the flag.
Result<AgentConfig> AgentConfigFromFlags(const FlagSet& flags);

}  // namespace segwan::edge
