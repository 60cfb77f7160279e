#include "edge-manager/slices/slice.h"

#include <algorithm>
#include <functional>

#include "segwan/log.h"

namespace segwan::edge {

using netlink::Link;
using netlink::Route;
using netlink::RouteType;
using netlink::Rule;
using netlink::Seg6Action;
using netlink::Seg6Encap;
using netlink::Seg6Local;

const char* SliceModeName(SliceMode m) { return m == SliceMode::kVrf ? "vrf" : "table"; }

SliceManager::SliceManager(netlink::Dataplane* dp, SliceMode mode, std::string sid_device)
    : dp_(dp), mode_(mode), sid_device_(std::move(sid_device)) {}

static const Link* FindLink(const std::vector<Link>& links, const std::string& name) {
  for (const auto& l : links) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

static std::string VrfName(uint32_t table) { return "vrf" + std::to_string(table); }

static std::vector<IpAddress> SidsOf(const SliceSpec& s) {
  std::vector<IpAddress> out;
  for (const auto& sid : {s.sid6, s.sid4, s.sid46}) {
    if (sid) out.push_back(*sid);
  }
  return out;
}

Result<SlicePlan> SliceManager::Plan(const SliceSpec& s, const std::vector<Link>& links,
                                     int sid_ifindex) const {
  SlicePlan plan;
  const bool vrf = mode_ == SliceMode::kVrf;
  if (vrf) plan.vrf = VrfName(s.table);
  std::vector<const Link*> lans;
  for (const auto& name : s.lan_interfaces) {
    const Link* l = FindLink(links, name);
    if (!l) return FieldError("slice.lan_interfaces", "no interface " + name + " on this router");
    lans.push_back(l);
  }
  if (!vrf) {
    std::vector<IpAddress> first_sids;
    for (const auto& r : s.remotes) {
      for (const auto* segs : {&r.segments, &r.segments_v4}) {
        if (!segs->empty() &&
            std::find(first_sids.begin(), first_sids.end(), segs->front()) == first_sids.end()) {
          first_sids.push_back(segs->front());
        }
      }
    }
    for (const Link* l : lans) {
      for (const auto& sid : first_sids) {
        plan.rules.push_back(Rule{.family = AF_INET6, .priority = kUnderlayRulePriority,
                                  .iif = l->name, .table = netlink::kTableMain,
                                  .dst = IpPrefix{sid, 128}});
      }
      for (int family : {AF_INET, AF_INET6}) {
        plan.rules.push_back(Rule{.family = family, .priority = kSliceRulePriority, .iif = l->name,
                                  .table = s.table});
      }
    }
    // The site's own prefixes, so that decapsulated IPv6 finds its way to the LAN. (In vrf
    // mode the connected routes of the enslaved LAN are in the table already.)
    for (const auto& p : s.lan_prefixes) {
      int oif = lans.empty() ? 0 : lans.front()->ifindex;
      for (const Link* l : lans) {
        for (const auto& a : l->addresses) {
          if (p.Contains(a.address) && a.length >= p.length) oif = l->ifindex;
        }
      }
      plan.routes.push_back(Route{.dst = p, .table = s.table, .oif = oif});
    }
    // Nothing falls through to the main table: the slice is isolated like a VRF.
    for (const char* any : {"0.0.0.0/0", "::/0"}) {
      plan.routes.push_back(Route{.dst = *ParsePrefix(any), .table = s.table,
                                  .type = RouteType::kUnreachable, .priority = kIsolationMetric});
    }
  }
  for (const auto& r : s.remotes) {
    for (const auto& p : r.prefixes) {
      const bool v4 = p.address.family == AF_INET;
      const auto& segs = (v4 && !r.segments_v4.empty()) ? r.segments_v4 : r.segments;
      plan.routes.push_back(Route{.dst = p, .table = s.table, .oif = sid_ifindex,
                                  .encap = Seg6Encap{r.encap_mode, segs}});
    }
  }
  auto sid_route = [&](const IpAddress& sid, Seg6Local local) {
    plan.routes.push_back(Route{.dst = IpPrefix{sid, 128}, .oif = sid_ifindex, .encap = local});
  };
  if (s.sid6) {
    sid_route(*s.sid6, vrf ? Seg6Local{.action = Seg6Action::kEndDT6, .vrf_table = s.table}
                           : Seg6Local{.action = Seg6Action::kEndDT6, .table = s.table});
  }
  if (s.sid4) {
    if (vrf) {
      sid_route(*s.sid4, Seg6Local{.action = Seg6Action::kEndDT4, .vrf_table = s.table});
    } else {
      if (!s.nexthop4) {
        return FieldError("slice.local_sids.nexthop4", "End.DX4 (table mode) needs the site's IPv4 next hop");
      }
      // End.DX4 sends out of the LAN towards the next hop.
      Route r{.dst = IpPrefix{*s.sid4, 128},
              .oif = lans.empty() ? sid_ifindex : lans.front()->ifindex,
              .encap = Seg6Local{.action = Seg6Action::kEndDX4, .nh4 = s.nexthop4}};
      plan.routes.push_back(r);
    }
  }
  if (s.sid46) {
    if (!vrf) return FieldError("slice.local_sids.sid46", "End.DT46 needs VRF mode; this edge uses table mode");
    sid_route(*s.sid46, Seg6Local{.action = Seg6Action::kEndDT46, .vrf_table = s.table});
  }
  return plan;
}

void SliceManager::SetInterfaceRoles(std::map<std::string, std::string> roles) {
  std::lock_guard lock(mu_);
  roles_ = std::move(roles);
}

Status SliceManager::CheckPlumbing(const SliceSpec& s, const std::vector<Link>& links) const {
  auto role = [&](const std::string& name) {
    auto it = roles_.find(name);
    return it == roles_.end() ? std::string() : it->second;
  };
  const bool lans_declared =
      std::any_of(roles_.begin(), roles_.end(), [](const auto& r) { return r.second == "lan"; });
  // The router's own interfaces: a slice must neither take them nor capture their addresses.
  std::vector<const Link*> plumbing;
  for (const auto& l : links) {
    const std::string r = role(l.name);
    if (l.loopback || l.name == sid_device_ || l.kind == "vrf" || r == "wan" || r == "mgmt") {
      plumbing.push_back(&l);
    }
  }
  for (size_t k = 0; k < s.lan_interfaces.size(); ++k) {
    const auto& name = s.lan_interfaces[k];
    const std::string f = "slice.lan_interfaces[" + std::to_string(k) + "]";
    const Link* l = FindLink(links, name);
    if (!l) return FieldError(f, "no interface " + name + " on this router");
    if (l->loopback) return FieldError(f, name + " is the loopback: a slice would capture what the router sends");
    if (name == sid_device_) return FieldError(f, name + " is the SID device");
    if (l->kind == "vrf") return FieldError(f, name + " is a VRF device");
    const std::string r = role(name);
    if (r == "wan" || r == "mgmt") return FieldError(f, name + " is a " + r + " interface, not a LAN");
    if (lans_declared && r != "lan") return FieldError(f, name + " is not one of this router's LAN interfaces");
  }
  auto covers_plumbing = [&](const IpPrefix& p, const std::string& f) -> Status {
    if (p.length == 0) return Status::Ok();  // a default route is explicit; the local table wins
    for (const Link* l : plumbing) {
      for (const auto& a : l->addresses) {
        if (p.Contains(a.address)) {
          return FieldError(f, p.ToString() + " covers " + a.address.ToString() + " of " + l->name +
                                   ", an address of the router itself");
        }
      }
    }
    return Status::Ok();
  };
  for (size_t k = 0; k < s.lan_prefixes.size(); ++k) {
    if (auto st = covers_plumbing(s.lan_prefixes[k], "slice.lan_prefixes[" + std::to_string(k) + "]"); !st) {
      return st;
    }
  }
  for (size_t r = 0; r < s.remotes.size(); ++r) {
    for (size_t k = 0; k < s.remotes[r].prefixes.size(); ++k) {
      const std::string f = "slice.remotes[" + std::to_string(r) + "].prefixes[" + std::to_string(k) + "]";
      if (auto st = covers_plumbing(s.remotes[r].prefixes[k], f); !st) return st;
    }
  }
  return Status::Ok();
}

Status SliceManager::CheckLocked(const SliceSpec& s, const std::vector<Link>& links) const {
  if (!slices_.count(s.id) && slices_.size() >= kMaxSlices) {
    return Error{"this edge holds " + std::to_string(kMaxSlices) + " slices already", "", ENOSPC};
  }
  if (auto st = CheckPlumbing(s, links); !st) return st;
  const auto sids = SidsOf(s);
  for (const auto& [id, other] : slices_) {
    if (id == s.id) continue;
    if (other.table == s.table) {
      return FieldError("slice.table", "table " + std::to_string(s.table) + " is used by slice " + id);
    }
    for (const auto& sid : SidsOf(other)) {
      if (std::find(sids.begin(), sids.end(), sid) != sids.end()) {
        return FieldError("slice.local_sids", "SID " + sid.ToString() + " is used by slice " + id);
      }
    }
    for (const auto& lan : other.lan_interfaces) {
      if (std::find(s.lan_interfaces.begin(), s.lan_interfaces.end(), lan) != s.lan_interfaces.end()) {
        return FieldError("slice.lan_interfaces", lan + " belongs to slice " + id);
      }
    }
  }
  return Status::Ok();
}

Status SliceManager::Check(const SliceSpec& s) {
  auto links = dp_->Links();
  if (!links) return links.error();
  std::lock_guard lock(mu_);
  return CheckLocked(s, *links);
}

Result<SliceManager::Installed> SliceManager::InstalledFor(uint32_t table,
                                                          const std::vector<IpAddress>& sids,
                                                          const std::vector<std::string>& lans) {
  auto routes = dp_->Routes(netlink::kProtoSegwan);
  if (!routes) return routes.error();
  auto rules = dp_->Rules(netlink::kProtoSegwan);
  if (!rules) return rules.error();
  Installed in;
  for (auto& r : *routes) {
    const bool is_sid = r.dst.length == 128 && r.family() == AF_INET6 &&
                        std::find(sids.begin(), sids.end(), r.dst.address) != sids.end();
    if (r.table == table || is_sid) in.routes.push_back(std::move(r));
  }
  for (auto& r : *rules) {
    const bool underlay = r.table == netlink::kTableMain && r.priority == kUnderlayRulePriority &&
                          std::find(lans.begin(), lans.end(), r.iif) != lans.end();
    if (r.table == table || underlay) in.rules.push_back(std::move(r));
  }
  return in;
}

namespace {

// Steps taken so far, undone in reverse if a later one fails.
class UndoLog {
 public:
  void Add(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
  void Rollback() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
    steps_.clear();
  }

 private:
  std::vector<std::function<void()>> steps_;
};

const Route* FindKey(const std::vector<Route>& routes, const Route& r) {
  for (const auto& x : routes) {
    if (x.SameKey(r)) return &x;
  }
  return nullptr;
}

}  // namespace

Result<ApplyCounts> SliceManager::Apply(const SliceSpec& s) {
  auto links = dp_->Links();
  if (!links) return links.error();
  std::lock_guard lock(mu_);
  if (auto st = CheckLocked(s, *links); !st) return st.error();
  // The SID device: found in the links already read; only a missing or down one costs a
  // request (a repeated apply must not touch the kernel at all).
  const Link* sid_link = FindLink(*links, sid_device_);
  Result<int> sid_if = sid_link && sid_link->up ? Result<int>(sid_link->ifindex)
                                                : dp_->EnsureSidDevice(sid_device_);
  if (!sid_if) return sid_if.error();
  auto plan = Plan(s, *links, *sid_if);
  if (!plan) return plan.error();

  // What is there now: this table and these SIDs, plus the SIDs and table of the previous
  // version of the slice (a changed request may move them).
  std::vector<IpAddress> sids = SidsOf(s);
  const SliceSpec* previous = nullptr;
  if (auto it = slices_.find(s.id); it != slices_.end()) {
    previous = &it->second;
    for (const auto& sid : SidsOf(*previous)) sids.push_back(sid);
  }
  std::vector<std::string> lans = s.lan_interfaces;
  if (previous) lans.insert(lans.end(), previous->lan_interfaces.begin(), previous->lan_interfaces.end());
  auto installed = InstalledFor(s.table, sids, lans);
  if (!installed) return installed.error();
  if (previous && previous->table != s.table) {
    auto old = InstalledFor(previous->table, {}, {});
    if (!old) return old.error();
    for (auto& r : old->routes) installed->routes.push_back(r);
    for (auto& r : old->rules) installed->rules.push_back(r);
  }

  ApplyCounts counts;
  UndoLog undo;
  auto fail = [&](const Status& st) -> Result<ApplyCounts> {
    SEGWAN_LOG(kWarn, "slices") << "apply " << s.id << " failed, rolling back: " << st.error().message;
    undo.Rollback();
    return st.error();
  };

  if (mode_ == SliceMode::kVrf) {
    const bool existed = std::any_of(links->begin(), links->end(),
                                     [&](const Link& l) { return l.name == plan->vrf; });
    if (auto st = dp_->CreateVrf(plan->vrf, s.table); !st) return fail(st);
    if (!existed) undo.Add([this, name = plan->vrf] { dp_->DeleteLink(name); });
    for (const auto& lan : s.lan_interfaces) {
      if (auto st = dp_->SetMaster(lan, plan->vrf); !st) return fail(st);
      undo.Add([this, lan] { dp_->SetMaster(lan, ""); });
    }
  }
  for (const auto& rule : plan->rules) {
    if (std::find(installed->rules.begin(), installed->rules.end(), rule) != installed->rules.end()) {
      continue;
    }
    if (auto st = dp_->AddRule(rule); !st) return fail(st);
    undo.Add([this, rule] { dp_->DeleteRule(rule); });
    ++counts.added;
  }
  for (const auto& route : plan->routes) {
    const Route* have = FindKey(installed->routes, route);
    if (have && *have == route) continue;
    if (auto st = dp_->ReplaceRoute(route); !st) return fail(st);
    if (have) {
      undo.Add([this, old = *have] { dp_->ReplaceRoute(old); });
    } else {
      undo.Add([this, route] { dp_->DeleteRoute(route); });
    }
    ++counts.added;
  }
  // Remove what the slice no longer wants.
  for (const auto& route : installed->routes) {
    if (FindKey(plan->routes, route)) continue;
    if (auto st = dp_->DeleteRoute(route); !st) return fail(st);
    undo.Add([this, route] { dp_->ReplaceRoute(route); });
    ++counts.removed;
  }
  for (const auto& rule : installed->rules) {
    if (std::find(plan->rules.begin(), plan->rules.end(), rule) != plan->rules.end()) continue;
    if (auto st = dp_->DeleteRule(rule); !st) return fail(st);
    undo.Add([this, rule] { dp_->AddRule(rule); });
    ++counts.removed;
  }
  if (previous && mode_ == SliceMode::kVrf) {  // release LANs and a VRF the slice left
    for (const auto& lan : previous->lan_interfaces) {
      if (std::find(s.lan_interfaces.begin(), s.lan_interfaces.end(), lan) == s.lan_interfaces.end()) {
        dp_->SetMaster(lan, "");
      }
    }
    if (previous->table != s.table) dp_->DeleteLink(VrfName(previous->table));
  }
  slices_[s.id] = s;
  SEGWAN_LOG(kInfo, "slices") << "applied slice " << s.id << " (table " << s.table << ", "
                              << SliceModeName(mode_) << " mode): " << counts.added << " added, "
                              << counts.removed << " removed";
  return counts;
}

Result<ApplyCounts> SliceManager::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = slices_.find(id);
  if (it == slices_.end()) return ApplyCounts{};  // removing what is not there succeeds
  const SliceSpec s = it->second;
  auto installed = InstalledFor(s.table, SidsOf(s), s.lan_interfaces);
  if (!installed) return installed.error();
  ApplyCounts counts;
  // Removal presses on past a failure (a half-removed slice is worse than a reported error).
  Status first_error;
  for (const auto& r : installed->routes) {
    if (auto st = dp_->DeleteRoute(r); !st) {
      if (first_error) first_error = st;
    } else {
      ++counts.removed;
    }
  }
  for (const auto& r : installed->rules) {
    if (auto st = dp_->DeleteRule(r); !st) {
      if (first_error) first_error = st;
    } else {
      ++counts.removed;
    }
  }
  if (mode_ == SliceMode::kVrf) {
    for (const auto& lan : s.lan_interfaces) dp_->SetMaster(lan, "");
    if (auto st = dp_->DeleteLink(VrfName(s.table)); !st && first_error) first_error = st;
  }
  if (!first_error) return first_error.error();
  slices_.erase(id);
  SEGWAN_LOG(kInfo, "slices") << "removed slice " << id << ": " << counts.removed << " objects";
  return counts;
}

std::vector<SliceSpec> SliceManager::Slices() const {
  std::lock_guard lock(mu_);
  std::vector<SliceSpec> out;
  for (const auto& [id, s] : slices_) out.push_back(s);
  return out;
}

}  // namespace segwan::edge
