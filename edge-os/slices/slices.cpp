#include "edge-os/slices/slices.h"

#include <algorithm>

#include "edge-os/controller/errors.h"
#include "edge-os/slices/planner.h"
#include "segwan/clock.h"
#include "segwan/log.h"
#include "segwan/text.h"

namespace segwan::controller {

namespace {

std::optional<Error> CheckShape(const SliceRequest& req) {
  if (req.name.empty() || Utf8Length(req.name) > 64) return ApiError(kBadRequest, "name", "must be 1 to 64 characters");
  if (req.sites.size() < 2) return ApiError(kBadRequest, "sites", "a slice joins at least two sites");
  return std::nullopt;
}

Error Busy(const std::string& id) {
  return ApiError(kConflict, "id", "slice " + id + " is being changed; try again when that is done");
}

}  // namespace

Status SliceService::Load() {
  auto slices = store_->Slices();
  if (!slices) return slices.error();
  std::lock_guard lock(mu_);
  for (auto& s : *slices) {
    Entry e{s, {}, false, false, std::nullopt};
    for (const auto& site : s.sites) e.edges[site.device] = {"pending", ""};
    slices_.emplace(s.id, std::move(e));
  }
  return Status::Ok();
}

std::map<std::string, Device> SliceService::DevicesOf(const Slice& s) {
  std::map<std::string, Device> out;
  for (const auto& site : s.sites) {
    if (auto d = devices_->Find(site.device)) out.emplace(site.device, *d);
  }
  return out;
}

Result<std::map<std::string, Device>> SliceService::CheckSites(const Principal& p, const Slice& s) {
  for (size_t k = 0; k < s.sites.size(); ++k) {
    const auto& site = s.sites[k];
    const std::string f = "sites[" + std::to_string(k) + "]";
    auto d = devices_->Find(site.device);
    if (!d) return ApiError(kBadRequest, f + ".device", "no device '" + site.device + "'");
    if (!d->enabled) return ApiError(kConflict, f + ".device", "device '" + site.device + "' is disabled");
    for (const auto& [id, other] : slices_) {
      if (id == s.id) continue;
      for (const Slice* o : {&other.s, other.next ? &*other.next : nullptr}) {
        if (!o) continue;
        for (const auto& os : o->sites) {
          if (os.device == site.device && os.interface == site.interface) {
            // Only the owner may learn which slice holds it.
            return ApiError(kConflict, f + ".interface",
                            "'" + site.interface + "' of " + site.device + " is already in " +
                                (p.Sees(other.s.tenant_id) ? "slice " + id : "another tenant's slice"));
          }
        }
      }
    }
  }
  return DevicesOf(s);
}

// Applies `next` on its edges and removes the slice from the edges of `prev` it no longer
// has. When an edge refuses, every edge already touched goes back to `prev` (or loses the
// slice if `prev` did not have it), so a refused request changes nothing.
Result<std::map<std::string, EdgeState>> SliceService::Push(const Slice& next,
                                                            const std::map<std::string, segwan::v1::Slice>& plan,
                                                            const Slice* prev,
                                                            const std::map<std::string, Device>& devices) {
  std::map<std::string, segwan::v1::Slice> old_plan;
  if (prev) {
    if (auto o = PlanSlice(Effective(*prev), devices)) old_plan = *o;
  }
  std::map<std::string, EdgeState> states;
  std::vector<std::string> applied;
  for (const auto& [device, msg] : plan) {
    if (!devices_->Reachable(device)) {
      states[device] = {"pending", "not connected; applied when it registers"};
      continue;
    }
    auto r = [&] {
      auto edge_lock = locks_->Lock(device);
      return devices_->Client(device)->ApplySlice(msg);
    }();
    if (r) {
      states[device] = {"applied", ""};
      applied.push_back(device);
      continue;
    }
    if (!Refused(r.error())) {
      states[device] = {"pending", r.error().message};
      continue;
    }
    for (const auto& a : applied) {
      auto edge_lock = locks_->Lock(a);
      auto old = old_plan.find(a);
      if (old != old_plan.end()) devices_->Client(a)->ApplySlice(old->second);
      else devices_->Client(a)->RemoveSlice(next.id);
    }
    size_t k = 0;
    while (k < next.sites.size() && next.sites[k].device != device) ++k;
    return ApiError(kUnprocessable, "sites[" + std::to_string(k) + "]", r.error().message);
  }
  for (const auto& [device, msg] : old_plan) {
    if (plan.count(device) || !devices_->Reachable(device)) continue;  // an absent edge is cleaned up by reconciling
    auto edge_lock = locks_->Lock(device);
    if (auto st = devices_->Client(device)->RemoveSlice(next.id); !st) {
      SEGWAN_LOG(kWarn, "slices") << "removing " << next.id << ": " << st.error().message << " (left to reconciliation)";
    }
  }
  return states;
}

void SliceService::Release(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = slices_.find(id);
  if (it == slices_.end()) return;
  if (it->second.creating) {
    slices_.erase(it);
    return;
  }
  it->second.busy = false;
  it->second.next.reset();
}

Result<SliceView> SliceService::Create(const Principal& p, const Tenant& owner, const SliceRequest& req) {
  if (auto e = CheckShape(req)) return *e;
  Slice s;
  s.tenant_id = owner.id;
  s.name = req.name;
  s.sites = req.sites;
  s.paths = req.paths;
  std::map<std::string, Device> devices;
  std::map<std::string, segwan::v1::Slice> plan;
  {
    // Checked and taken in one go: two requests cannot both claim an interface or the last
    // slice of a quota.
    std::lock_guard lock(mu_);
    const auto n = std::count_if(slices_.begin(), slices_.end(), [&](const auto& x) { return x.second.s.tenant_id == owner.id; });
    if (static_cast<size_t>(n) >= max_per_tenant_) {
      return ApiError(kTooMany, "", "tenant " + owner.id + " has " + std::to_string(n) + " slices, the most it may have (--max-slices-per-tenant)");
    }
    auto checked = CheckSites(p, s);
    if (!checked) return checked.error();
    devices = std::move(*checked);
    // Plan with a provisional number to validate everything before anything is allocated.
    s.number = 1;
    if (auto trial = PlanSlice(s, devices); !trial) return ApiError(kBadRequest, trial.error().field, trial.error().message);
    const auto next = store_->NextId("slice-number");
    if (!next) return next.error();
    if (*next > kMaxSliceNumber) return ApiError(kConflict, "", "no slice numbers left");
    s.number = static_cast<uint32_t>(*next);
    s.id = "sl" + std::to_string(*next);
    s.created_ms = NowUtcMs();
    auto planned = PlanSlice(s, devices);
    if (!planned) return ApiError(kBadRequest, planned.error().field, planned.error().message);
    plan = std::move(*planned);
    slices_[s.id] = Entry{s, {}, true, false, std::nullopt};  // reconciles leave it to this call
  }
  auto states = Push(s, plan, nullptr, devices);
  if (!states) {
    Release(s.id);
    return states.error();
  }
  if (auto st = store_->PutSlice(s); !st) {
    // Not kept: the edges that took it lose it again, and the request changed nothing.
    for (const auto& [d, e] : *states) {
      if (e.state != "applied") continue;
      auto edge_lock = locks_->Lock(d);
      devices_->Client(d)->RemoveSlice(s.id);
    }
    Release(s.id);
    return st.error();
  }
  std::lock_guard lock(mu_);
  auto& e = slices_[s.id];
  e.creating = false;
  e.edges = *states;
  SEGWAN_LOG(kInfo, "slices") << "slice " << s.id << " (" << s.name << ") of " << s.tenant_id << " created on "
                              << plan.size() << " edges";
  return SliceView{e.s, e.edges};
}

Result<SliceView> SliceService::Update(const Principal& p, const std::string& id, const SliceRequest& req) {
  if (auto e = CheckShape(req)) return *e;
  Slice prev, s;
  std::map<std::string, Device> devices;
  std::map<std::string, segwan::v1::Slice> plan;
  {
    std::lock_guard lock(mu_);
    auto it = slices_.find(id);
    if (it == slices_.end() || it->second.creating || !p.Sees(it->second.s.tenant_id)) {
      return ApiError(kNotFound, "id", "no slice '" + id + "'");
    }
    if (it->second.busy) return Busy(id);
    prev = it->second.s;
    if (!req.tenant.empty() && req.tenant != prev.tenant_id) return ApiError(kBadRequest, "tenant", "a slice keeps its tenant");
    it->second.busy = true;  // marked before its sessions are asked (see the hook)
  }
  s = prev;
  s.name = req.name;
  s.sites = req.sites;
  s.paths = req.paths;
  // What the sessions on the slice say comes first: a change that would strand a session is
  // refused as such, whatever else is wrong with it.
  if (hooks_.users) {
    if (auto e = hooks_.users(prev, &s)) {
      Release(id);
      return *e;
    }
  }
  {
    std::lock_guard lock(mu_);
    auto unmark = [&] { slices_.at(id).busy = false; };
    auto checked = CheckSites(p, s);
    if (!checked) {
      unmark();
      return checked.error();
    }
    devices = std::move(*checked);
    for (auto& [d, dev] : DevicesOf(prev)) devices.emplace(d, dev);  // to plan the old state for rollback and removal
    auto planned = PlanSlice(Effective(s), devices);
    if (!planned) {
      unmark();
      return ApiError(kBadRequest, planned.error().field, planned.error().message);
    }
    plan = std::move(*planned);
    slices_.at(id).next = s;  // its interfaces are taken from now on
  }
  auto states = Push(s, plan, &prev, devices);
  if (!states) {
    Release(id);
    return states.error();
  }
  if (auto st = store_->PutSlice(s); !st) {
    // Not kept: the edges go back to the stored version.
    if (auto old = PlanSlice(Effective(prev), devices)) Push(prev, *old, &s, devices);
    Release(id);
    return st.error();
  }
  std::lock_guard lock(mu_);
  auto& e = slices_[id];
  e.s = s;
  e.edges = *states;
  e.busy = false;
  e.next.reset();
  SEGWAN_LOG(kInfo, "slices") << "slice " << s.id << " updated: " << plan.size() << " edges";
  return SliceView{e.s, e.edges};
}

Status SliceService::Delete(const Principal& p, const std::string& id) {
  Slice s;
  {
    std::lock_guard lock(mu_);
    auto it = slices_.find(id);
    if (it == slices_.end() || it->second.creating || !p.Sees(it->second.s.tenant_id)) {
      return ApiError(kNotFound, "id", "no slice '" + id + "'");
    }
    if (it->second.busy) return Busy(id);
    it->second.busy = true;
    s = it->second.s;
  }
  if (hooks_.users) {
    if (auto e = hooks_.users(s, nullptr)) {
      Release(id);
      return *e;
    }
  }
  // Forgotten first: a store that cannot forget it leaves everything as it was, and a
  // reconcile that starts now no longer puts it back.
  if (auto st = store_->DeleteSlice(id); !st) {
    Release(id);
    return st.error();
  }
  {
    std::lock_guard lock(mu_);
    slices_.erase(id);
  }
  std::set<std::string> devices;
  for (const auto& site : s.sites) devices.insert(site.device);
  for (const auto& d : devices) {
    // An edge that is away is cleaned up when it registers again (a reconcile removes slices
    // the controller no longer has).
    if (!devices_->Reachable(d)) continue;
    auto edge_lock = locks_->Lock(d);
    if (auto st = devices_->Client(d)->RemoveSlice(s.id); !st) {
      SEGWAN_LOG(kWarn, "slices") << "removing " << s.id << ": " << st.error().message << " (left to reconciliation)";
    }
  }
  SEGWAN_LOG(kInfo, "slices") << "slice " << id << " deleted";
  return Status::Ok();
}

std::vector<SliceView> SliceService::List(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<SliceView> out;
  for (const auto& [id, e] : slices_) {
    if (!e.creating && p.Sees(e.s.tenant_id)) out.push_back({e.s, e.edges});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.slice.number < b.slice.number; });
  return out;
}

Result<SliceView> SliceService::Get(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = slices_.find(id);
  if (it == slices_.end() || it->second.creating || !p.Sees(it->second.s.tenant_id)) {
    return ApiError(kNotFound, "id", "no slice '" + id + "'");
  }
  return SliceView{it->second.s, it->second.edges};
}

Result<Slice> SliceService::ForNewSession(const std::string& tenant, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = slices_.find(id);
  if (it == slices_.end() || it->second.creating || it->second.s.tenant_id != tenant) {
    return ApiError(kNotFound, "slice", "no slice '" + id + "'");
  }
  if (it->second.busy) return ApiError(kConflict, "slice", "slice " + id + " is being changed; try again when that is done");
  return it->second.s;
}

std::optional<Slice> SliceService::Find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = slices_.find(id);
  if (it == slices_.end() || it->second.creating) return std::nullopt;
  return it->second.s;
}

Result<std::vector<std::string>> SliceService::FlowSegments(const Slice& s, const std::string& from,
                                                            const std::string& to, const std::string& family) {
  auto plan = PlanSlice(s, DevicesOf(s));
  if (!plan) return plan.error();
  auto edge = plan->find(from);
  if (edge == plan->end()) return FieldError("from", "'" + from + "' is not a device of slice " + s.id);
  for (const auto& r : edge->second.remotes()) {
    if (r.name() != to) continue;
    const auto& segs = family == "ipv4" ? r.segments_v4() : r.segments();
    if (segs.empty()) {
      return FieldError("family", "the slice carries no IPv4 to " + to + " (a table-mode site needs its nexthop4)");
    }
    return std::vector<std::string>(segs.begin(), segs.end());
  }
  return FieldError("to", "'" + to + "' is not another device of slice " + s.id);
}

Slice SliceService::Effective(const Slice& s) {
  if (!hooks_.steered) return s;
  Slice out = s;
  for (auto& p : hooks_.steered(s.id)) {
    auto it = std::find_if(out.paths.begin(), out.paths.end(), [&](const auto& x) { return x.from == p.from && x.to == p.to; });
    if (it != out.paths.end()) *it = std::move(p);
    else out.paths.push_back(std::move(p));
  }
  return out;
}

Status SliceService::Reapply(const std::string& slice_id, const std::string& device_id) {
  auto s = Find(slice_id);
  if (!s) return ApiError(kNotFound, "slice", "no slice '" + slice_id + "'");
  auto plan = PlanSlice(Effective(*s), DevicesOf(*s));
  if (!plan) return plan.error();
  auto edge = plan->find(device_id);
  if (edge == plan->end()) return ApiError(kNotFound, "device", device_id + " is not in slice " + slice_id);
  if (!devices_->Reachable(device_id)) return Error{device_id + " is not connected", "", kGrpcUnavailable};
  Status st = [&]() -> Status {
    auto edge_lock = locks_->Lock(device_id);
    auto r = devices_->Client(device_id)->ApplySlice(edge->second);
    if (!r) return r.error();
    return Status::Ok();
  }();
  SetEdgeState(slice_id, device_id, st ? EdgeState{"applied", ""} : EdgeState{Refused(st.error()) ? "error" : "pending", st.error().message});
  return st;
}

SlicesOfEdge SliceService::OfEdge(const std::string& device_id) {
  SlicesOfEdge out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : slices_) {
    // A slice a REST call is putting in place right now is that call's to finish.
    if (e.creating || e.busy) {
      out.busy.insert(id);
      continue;
    }
    if (std::any_of(e.s.sites.begin(), e.s.sites.end(), [&](const auto& x) { return x.device == device_id; })) {
      out.wanted.push_back(e.s);
    }
  }
  return out;
}

void SliceService::SetEdgeState(const std::string& slice_id, const std::string& device_id, EdgeState state) {
  std::lock_guard lock(mu_);
  auto it = slices_.find(slice_id);
  if (it != slices_.end() && !it->second.creating) it->second.edges[device_id] = std::move(state);
}

std::optional<std::string> SliceService::UserOf(const std::string& device_id) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : slices_) {
    for (const Slice* s : {&e.s, e.next ? &*e.next : nullptr}) {
      if (!s) continue;
      for (const auto& site : s->sites) {
        if (site.device == device_id) return id;
      }
    }
  }
  return std::nullopt;
}

}  // namespace segwan::controller
