#pragma once

// An in-memory Dataplane for unit tests that must run without root. It behaves like the
// kernel where the slice logic cares (replace by key, idempotent add/delete) and can be told
// to fail a given mutation, to test rollback.
#include <algorithm>
#include <functional>

#include "edge-manager/netlink/dataplane.h"

namespace segwan::netlink {

class FakeDataplane : public Dataplane {
 public:
  FakeDataplane() {
    links_.push_back(Link{.ifindex = 1, .name = "lo", .up = true, .loopback = true,
                          .addresses = {IpPrefix{*ParseIp("::1"), 128}, IpPrefix{*ParseIp("127.0.0.1"), 8}}});
    AddLink("wan1", {"fd5e:0:a1::1/64"});
    AddLink("lan0", {"10.10.1.1/24", "fd10:a::1/64"});
    AddLink("lan1", {"10.20.1.1/24"});
  }

  int AddLink(const std::string& name, std::vector<std::string> addrs) {
    Link l{.ifindex = next_index_++, .name = name, .up = true};
    for (const auto& a : addrs) {  // interface addresses keep their host bits, as the kernel's do
      const auto slash = a.find('/');
      l.addresses.push_back(IpPrefix{*ParseIp(a.substr(0, slash)), std::stoi(a.substr(slash + 1))});
    }
    links_.push_back(l);
    return l.ifindex;
  }

  // The n-th mutation from now (1 = the next one) fails with EINVAL.
  void FailMutation(int n) { fail_countdown_ = n; }
  int mutations() const { return mutations_; }
  bool vrf_supported = false;

  const std::vector<Route>& routes() const { return routes_; }
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<Link>& links() const { return links_; }
  void EraseRouteBehindOurBack(size_t i) { routes_.erase(routes_.begin() + static_cast<long>(i)); }

  Result<std::vector<Link>> Links() override { return links_; }

  Status SetLinkUp(const std::string& ifname, bool up) override {
    if (auto st = Mutate(); !st) return st;
    Link* l = Find(ifname);
    if (!l) return Error{"no interface " + ifname, "", ENODEV};
    l->up = up;
    return Status::Ok();
  }
  Status AddAddress(const std::string& ifname, const IpPrefix& p) override {
    if (auto st = Mutate(); !st) return st;
    Link* l = Find(ifname);
    if (!l) return Error{"no interface " + ifname, "", ENODEV};
    if (std::find(l->addresses.begin(), l->addresses.end(), p) == l->addresses.end()) {
      l->addresses.push_back(p);
    }
    return Status::Ok();
  }
  Status DeleteAddress(const std::string& ifname, const IpPrefix& p) override {
    if (auto st = Mutate(); !st) return st;
    if (Link* l = Find(ifname)) std::erase(l->addresses, p);
    return Status::Ok();
  }

  Status ReplaceRoute(const Route& r) override {
    if (auto st = Mutate(); !st) return st;
    auto it = std::find_if(routes_.begin(), routes_.end(), [&](const Route& x) { return x.SameKey(r); });
    if (it != routes_.end()) *it = r; else routes_.push_back(r);
    return Status::Ok();
  }
  Status DeleteRoute(const Route& r) override {
    if (auto st = Mutate(); !st) return st;
    std::erase_if(routes_, [&](const Route& x) { return x.SameKey(r) && x.protocol == r.protocol; });
    return Status::Ok();
  }
  Result<std::vector<Route>> Routes(uint8_t protocol) override {
    std::vector<Route> out;
    for (const auto& r : routes_) if (r.protocol == protocol) out.push_back(r);
    return out;
  }
  Status AddRule(const Rule& r) override {
    if (auto st = Mutate(); !st) return st;
    if (std::find(rules_.begin(), rules_.end(), r) == rules_.end()) rules_.push_back(r);
    return Status::Ok();
  }
  Status DeleteRule(const Rule& r) override {
    if (auto st = Mutate(); !st) return st;
    std::erase(rules_, r);
    return Status::Ok();
  }
  Result<std::vector<Rule>> Rules(uint8_t protocol) override {
    std::vector<Rule> out;
    for (const auto& r : rules_) if (r.protocol == protocol) out.push_back(r);
    return out;
  }
  Status CreateVrf(const std::string& name, uint32_t table) override {
    if (!vrf_supported) return Error{"vrf: Unknown device type", "", EOPNOTSUPP};
    if (auto st = Mutate(); !st) return st;
    if (Find(name)) return Status::Ok();
    links_.push_back(Link{.ifindex = next_index_++, .name = name, .kind = "vrf", .up = true, .vrf_table = table});
    return Status::Ok();
  }
  Status DeleteLink(const std::string& name) override {
    if (auto st = Mutate(); !st) return st;
    std::erase_if(links_, [&](const Link& l) { return l.name == name; });
    return Status::Ok();
  }
  Status SetMaster(const std::string& ifname, const std::string& master) override {
    if (auto st = Mutate(); !st) return st;
    Link* l = Find(ifname);
    if (!l) return Error{"no interface " + ifname, "", ENODEV};
    const Link* m = master.empty() ? nullptr : Find(master);
    l->master = m ? m->ifindex : 0;
    return Status::Ok();
  }
  Result<int> EnsureSidDevice(const std::string& name) override {
    // Like the real one: a request to the kernel every time (create if missing, set up).
    if (auto st = Mutate(); !st) return st.error();
    if (Link* l = Find(name)) {
      l->up = true;
      return l->ifindex;
    }
    return AddLink(name, {});
  }

  Link* Find(const std::string& name) {
    for (auto& l : links_) if (l.name == name) return &l;
    return nullptr;
  }

 private:
  Status Mutate() {
    ++mutations_;
    if (fail_countdown_ > 0 && --fail_countdown_ == 0) {
      return Error{"injected failure: Invalid argument", "", EINVAL};
    }
    return Status::Ok();
  }
  std::vector<Link> links_;
  std::vector<Route> routes_;
  std::vector<Rule> rules_;
  int next_index_ = 2;
  int fail_countdown_ = 0;
  int mutations_ = 0;
};

}  // namespace segwan::netlink
