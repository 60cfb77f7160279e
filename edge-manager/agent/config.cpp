#include "edge-manager/agent/config.h"

#include "segwan/text.h"

#include <net/if.h>

namespace segwan::edge {

void AddAgentFlags(FlagSet& f) {
  f.AddString("config", "", "read settings from this file (name = value lines)");
  f.AddString("device-id", "", "this router's id, [a-z0-9-]{1,63} (required)");
  f.AddString("token-file", "", "file holding the shared registration token (--insecure only)");
  f.AddString("controller", "", "controller registration address host:port, or several controllers' host:port,... "
              "(they take over from each other; empty: standalone)");
  f.AddString("listen", "", "address of the EdgeManager gRPC service (default: the first --mgmt interface's address, port 50061)");
  f.AddString("advertise", "", "gRPC address reported to the controller (default: --listen)");
  f.AddString("wan", "", "WAN interfaces, comma separated");
  f.AddString("lan", "", "LAN interfaces, comma separated");
  f.AddString("mgmt", "", "management interfaces, comma separated");
  f.AddString("locator", "", "SRv6 SID locator prefix, e.g. fc00:0:a::/48");
  f.AddString("state-dir", kDefaultStateDir, "where the agent keeps its state");
  f.AddString("sid-dev", kDefaultSidDevice, "device SIDs are installed on (created if missing)");
  f.AddString("slice-mode", "auto", "auto (vrf when the kernel has VRF, else table), vrf or table");
  f.AddBool("check-kernel", false, "list what the agent needs from this kernel, present or missing, and exit "
            "(0: all that --slice-mode requires is there)");
  f.AddBool("check-kernel-missing", false, "as --check-kernel, but print only the missing required features, one a line");
  f.AddBool("skip-kernel-check", false, "start even when the kernel lacks a required feature (warns)");
  f.AddString("tls-dir", "", "where the agent keeps its key and certificate (default: STATE_DIR/tls)");
  f.AddString("ca-file", "", "the controller's CA certificate (PEM), to enrol");
  f.AddString("join-token-file", "", "file holding the one-time join token the operator made for this device");
  f.AddBool("stamp-packet-ring", false,
            "user-space STAMP reflector on an AF_PACKET ring: faster, but every received IPv6 packet passes a tap");
  f.AddBool("insecure", false, "plaintext gRPC both ways and the shared --token-file (closed lab networks only)");
  f.AddString("log-level", "info", "debug, info, warn or error");
}

static Status CheckInterfaces(const std::string& flag, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    if (n.size() >= IFNAMSIZ || n.find_first_of("/ \t:") != std::string::npos) {
      return FieldError("--" + flag, "'" + n + "' is not a valid interface name");
    }
  }
  return Status::Ok();
}

Result<AgentConfig> AgentConfigFromFlags(const FlagSet& f) {
  AgentConfig c;
  c.device_id = f.GetString("device-id");
  if (!IsValidIdentifier(c.device_id)) {
    return FieldError("--device-id", c.device_id.empty()
                                         ? "is required"
                                         : "'" + c.device_id + "' must match [a-z0-9-]{1,63}");
  }
  c.token_file = f.GetString("token-file");
  if (const auto ctl = f.GetString("controller"); !ctl.empty()) {
    for (const auto& item : SplitList(ctl)) {
      auto hp = ParseHostPort(item);
      if (!hp) return FieldError("--controller", "'" + item + "' is not host:port");
      c.controllers.push_back(*hp);
    }
    if (c.controllers.empty() || c.controllers.size() > 16) return FieldError("--controller", "takes 1 to 16 addresses");
    c.controller = c.controllers.front();
    if (f.GetBool("insecure") && c.token_file.empty()) {
      return FieldError("--token-file", "is required with --controller and --insecure");
    }
  }
  c.wan_interfaces = SplitList(f.GetString("wan"));
  c.lan_interfaces = SplitList(f.GetString("lan"));
  c.mgmt_interfaces = SplitList(f.GetString("mgmt"));
  for (auto* pair : {&c.wan_interfaces, &c.lan_interfaces, &c.mgmt_interfaces}) {
    const char* flag = pair == &c.wan_interfaces ? "wan" : pair == &c.lan_interfaces ? "lan" : "mgmt";
    if (auto st = CheckInterfaces(flag, *pair); !st) return st.error();
  }
  if (const auto loc = f.GetString("locator"); !loc.empty()) {
    c.locator = ParsePrefix(loc);
    if (!c.locator || c.locator->address.family != AF_INET6) {
      return FieldError("--locator", "'" + loc + "' is not an IPv6 prefix without host bits");
    }
    if (c.locator->length > 112) {
      return FieldError("--locator", "prefix length must be at most 112 to leave room for SIDs");
    }
  }
  c.state_dir = f.GetString("state-dir");
  c.sid_device = f.GetString("sid-dev");
  if (auto st = CheckInterfaces("sid-dev", {c.sid_device}); !st || c.sid_device.empty()) {
    return FieldError("--sid-dev", "'" + c.sid_device + "' is not a valid interface name");
  }
  c.slice_mode = f.GetString("slice-mode");
  c.skip_kernel_check = f.GetBool("skip-kernel-check");
  if (c.slice_mode != "auto" && c.slice_mode != "vrf" && c.slice_mode != "table") {
    return FieldError("--slice-mode", "must be auto, vrf or table");
  }
  c.insecure = f.GetBool("insecure");
  c.stamp_packet_ring = f.GetBool("stamp-packet-ring");
  c.tls_dir = f.GetString("tls-dir");
  if (c.tls_dir.empty()) c.tls_dir = c.state_dir + "/tls";
  c.ca_file = f.GetString("ca-file");
  c.join_token_file = f.GetString("join-token-file");
  // Where the API listens: given, or the management interface's address (resolved at start).
  const auto listen = f.GetString("listen");
  if (listen.empty()) {
    if (c.mgmt_interfaces.empty()) {
      return FieldError("--listen", "is required without a --mgmt interface (the API listens on the management address)");
    }
    c.listen_on_mgmt = true;
    c.listen = HostPort{"", kDefaultApiPort};
  } else {
    auto hp = ParseHostPort(listen);
    if (!hp) return FieldError("--listen", "'" + listen + "' is not host:port");
    c.listen = *hp;
  }
  c.advertise = f.GetString("advertise");
  if (!c.advertise.empty() && !ParseHostPort(c.advertise)) {
    return FieldError("--advertise", "'" + c.advertise + "' is not host:port");
  }
  if (c.advertise.empty() && !c.listen_on_mgmt) {
    const bool wildcard = c.listen.host == "::" || c.listen.host == "0.0.0.0";
    if (wildcard && c.controller) {
      return FieldError("--advertise", "is required when --listen is a wildcard address: the "
                                       "controller needs an address it can reach");
    }
    c.advertise = c.listen.ToString();
  }
  return c;
}

}  // namespace segwan::edge
