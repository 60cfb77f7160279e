#include <linux/rtnetlink.h>
#include <net/if.h>

#include <map>
#include <mutex>

#include "edge-manager/netlink/dataplane.h"
#include "edge-manager/netlink/socket.h"
#include "segwan/log.h"

namespace segwan::netlink {

namespace {

bool IsAbsent(const Status& s) { return !s && (s.error().code == ENOENT || s.error().code == ESRCH); }

class NetlinkDataplane final : public Dataplane {
 public:
  explicit NetlinkDataplane(std::unique_ptr<NetlinkSocket> sock) : sock_(std::move(sock)) {}

  Result<std::vector<Link>> Links() override {
    std::lock_guard lock(mu_);
    std::vector<Link> links;
    std::map<int, size_t> by_index;
    auto st = sock_->Dump(RTM_GETLINK, AF_UNSPEC, [&](const nlmsghdr* h) {
      if (auto l = DecodeLink(h)) {
        by_index[l->ifindex] = links.size();
        links.push_back(std::move(*l));
      }
    });
    if (!st) return st.error();
    st = sock_->Dump(RTM_GETADDR, AF_UNSPEC, [&](const nlmsghdr* h) {
      if (auto a = DecodeAddress(h)) {
        if (auto it = by_index.find(a->first); it != by_index.end()) {
          links[it->second].addresses.push_back(a->second);
        }
      }
    });
    if (!st) return st.error();
    return links;
  }

  Status SetLinkUp(const std::string& ifname, bool up) override {
    const int idx = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (idx == 0) return Error{"no interface " + ifname, "", ENODEV};
    std::lock_guard lock(mu_);
    return sock_->Request(EncodeLinkSet(idx, up, std::nullopt),
                          "set " + ifname + (up ? " up" : " down"));
  }

  Status AddAddress(const std::string& ifname, const IpPrefix& p) override {
    auto m = EncodeAddress(true, static_cast<int>(if_nametoindex(ifname.c_str())), p);
    if (!m) return Error{ifname + ": " + m.error().message, m.error().field, ENODEV};
    std::lock_guard lock(mu_);
    return sock_->Request(*m, "address " + p.address.ToString() + "/" +
                                  std::to_string(p.length) + " on " + ifname);
  }

  Status DeleteAddress(const std::string& ifname, const IpPrefix& p) override {
    const int idx = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (idx == 0) return Status::Ok();  // the interface, and so its address, is gone
    auto m = EncodeAddress(false, idx, p);
    if (!m) return m.error();
    std::lock_guard lock(mu_);
    auto st = sock_->Request(*m, "delete address " + p.address.ToString() + " on " + ifname);
    return (!st && st.error().code == EADDRNOTAVAIL) ? Status::Ok() : st;
  }

  Status ReplaceRoute(const Route& r) override {
    auto m = EncodeRouteReplace(r);
    if (!m) return m.error();
    std::lock_guard lock(mu_);
    return sock_->Request(*m, "route " + r.ToString());
  }

  Status DeleteRoute(const Route& r) override {
    auto m = EncodeRouteDelete(r);
    if (!m) return m.error();
    std::lock_guard lock(mu_);
    auto st = sock_->Request(*m, "delete route " + r.ToString());
    return IsAbsent(st) ? Status::Ok() : st;
  }

  Result<std::vector<Route>> Routes(uint8_t protocol) override {
    std::lock_guard lock(mu_);
    std::vector<Route> out;
    for (int family : {AF_INET, AF_INET6}) {
      auto st = sock_->Dump(RTM_GETROUTE, family, [&](const nlmsghdr* h) {
        const auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
        if (rt->rtm_protocol != protocol) return;
        auto r = DecodeRoute(h);
        if (r) {
          out.push_back(std::move(*r));
        } else {
          SEGWAN_LOG(kWarn, "netlink") << "skipping a route of ours: " << r.error().message;
        }
      });
      if (!st) return st.error();
    }
    return out;
  }

  Status AddRule(const Rule& r) override {
    auto m = EncodeRuleAdd(r);
    if (!m) return m.error();
    std::lock_guard lock(mu_);
    auto st = sock_->Request(*m, "rule " + r.ToString());
    return (!st && st.error().code == EEXIST) ? Status::Ok() : st;
  }

  Status DeleteRule(const Rule& r) override {
    auto m = EncodeRuleDelete(r);
    if (!m) return m.error();
    std::lock_guard lock(mu_);
    auto st = sock_->Request(*m, "delete rule " + r.ToString());
    return IsAbsent(st) ? Status::Ok() : st;
  }

  Result<std::vector<Rule>> Rules(uint8_t protocol) override {
    std::lock_guard lock(mu_);
    std::vector<Rule> out;
    for (int family : {AF_INET, AF_INET6}) {
      auto st = sock_->Dump(RTM_GETRULE, family, [&](const nlmsghdr* h) {
        if (auto r = DecodeRule(h); r && r->protocol == protocol) out.push_back(*r);
      });
      if (!st) return st.error();
    }
    return out;
  }

  Status CreateVrf(const std::string& name, uint32_t table) override {
    auto m = EncodeVrfCreate(name, table);
    if (!m) return m.error();
    std::lock_guard lock(mu_);
    auto st = sock_->Request(*m, "vrf " + name);
    if (!st && st.error().code == EEXIST) return Status::Ok();
    if (!st) return st;
    const int idx = static_cast<int>(if_nametoindex(name.c_str()));
    return sock_->Request(EncodeLinkSet(idx, true, std::nullopt), "set " + name + " up");
  }

  Status DeleteLink(const std::string& name) override {
    const int idx = static_cast<int>(if_nametoindex(name.c_str()));
    if (idx == 0) return Status::Ok();
    std::lock_guard lock(mu_);
    auto st = sock_->Request(EncodeLinkDelete(idx), "delete link " + name);
    return (!st && st.error().code == ENODEV) ? Status::Ok() : st;
  }

  Status SetMaster(const std::string& ifname, const std::string& master) override {
    const int idx = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (idx == 0) return Error{"no interface " + ifname, "", ENODEV};
    int midx = 0;
    if (!master.empty()) {
      midx = static_cast<int>(if_nametoindex(master.c_str()));
      if (midx == 0) return Error{"no interface " + master, "", ENODEV};
    }
    std::lock_guard lock(mu_);
    return sock_->Request(EncodeLinkSet(idx, std::nullopt, midx), "set " + ifname + " master " + master);
  }

  Result<int> EnsureSidDevice(const std::string& name) override {
    int idx = static_cast<int>(if_nametoindex(name.c_str()));
    std::lock_guard lock(mu_);
    if (idx == 0) {
      auto m = EncodeVethCreate(name, name + "-peer");
      if (!m) return m.error();
      if (auto st = sock_->Request(*m, "create " + name); !st && st.error().code != EEXIST) {
        return st.error();
      }
      const int peer = static_cast<int>(if_nametoindex((name + "-peer").c_str()));
      if (peer) sock_->Request(EncodeLinkSet(peer, true, std::nullopt), "set peer up");
      idx = static_cast<int>(if_nametoindex(name.c_str()));
      if (idx == 0) return Error{"created " + name + " but cannot find it", "", ENODEV};
    }
    if (auto st = sock_->Request(EncodeLinkSet(idx, true, std::nullopt), "set " + name + " up"); !st) {
      return st.error();
    }
    return idx;
  }

 private:
  std::mutex mu_;  // one request/answer exchange at a time on the socket
  std::unique_ptr<NetlinkSocket> sock_;
};

}  // namespace

Result<std::unique_ptr<Dataplane>> OpenNetlinkDataplane() {
  auto sock = NetlinkSocket::Open();
  if (!sock) return sock.error();
  return std::unique_ptr<Dataplane>(new NetlinkDataplane(std::move(*sock)));
}

}  // namespace segwan::netlink
