#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edge-manager/netlink/types.h"
#include "segwan/result.h"

namespace segwan::netlink {

// What the agent needs from the kernel, behind an interface so the slice logic and the gRPC
// service can be tested without root (FakeDataplane in tests). Every mutation is idempotent:
// adding what is there or deleting what is not succeeds.
class Dataplane {
 public:
  virtual ~Dataplane() = default;

  virtual Result<std::vector<Link>> Links() = 0;  // with their addresses
  virtual Status SetLinkUp(const std::string& ifname, bool up) = 0;
  // `prefix` keeps its host bits: they are the address (fd10:a::1/64).
  virtual Status AddAddress(const std::string& ifname, const IpPrefix& prefix) = 0;
  virtual Status DeleteAddress(const std::string& ifname, const IpPrefix& prefix) = 0;
  virtual Status ReplaceRoute(const Route& route) = 0;
  virtual Status DeleteRoute(const Route& route) = 0;
  virtual Result<std::vector<Route>> Routes(uint8_t protocol) = 0;  // all tables, both families
  virtual Status AddRule(const Rule& rule) = 0;
  virtual Status DeleteRule(const Rule& rule) = 0;
  virtual Result<std::vector<Rule>> Rules(uint8_t protocol) = 0;
  virtual Status CreateVrf(const std::string& name, uint32_t table) = 0;
  virtual Status DeleteLink(const std::string& name) = 0;
  // Enslaves `ifname` to `master` ("" = release it).
  virtual Status SetMaster(const std::string& ifname, const std::string& master) = 0;
  // A device to hang SIDs on (not lo: the kernel makes non-local routes via lo reject routes).
  // Uses `name` if it exists, else creates it (a veth whose peer stays here). Returns ifindex.
  virtual Result<int> EnsureSidDevice(const std::string& name) = 0;
};

// The real thing, over rtnetlink in the agent's network namespace.
Result<std::unique_ptr<Dataplane>> OpenNetlinkDataplane();

}  // namespace segwan::netlink
