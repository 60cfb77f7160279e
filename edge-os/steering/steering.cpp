#include "edge-os/steering/steering.h"

#include <algorithm>
#include <cstdio>

#include "edge-os/controller/errors.h"
#include "edge-os/slices/planner.h"
#include "segwan/log.h"
#include "segwan/net.h"
#include "segwan/text.h"

namespace segwan::controller {

namespace {

constexpr size_t kMaxCandidates = 8;
constexpr size_t kMaxProbesPerPolicy = 64;

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::optional<Error> CheckLimit(const std::optional<double>& v, const char* field, double max) {
  if (v && !(*v >= 0 && *v <= max)) return ApiError(kBadRequest, std::string("limits.") + field, "must be 0 to " + FormatNumber(max));
  return std::nullopt;
}

}  // namespace

Status SteeringService::Load() {
  auto slas = store_->Slas();
  if (!slas) return slas.error();
  auto policies = store_->Policies();
  if (!policies) return policies.error();
  auto choices = store_->Choices();
  if (!choices) return choices.error();
  const auto probes = sessions_->Probes();
  std::lock_guard lock(mu_);
  for (auto& c : *slas) slas_.emplace(c.id, c);
  for (auto& p : *policies) {
    Entry e{p, {}, false, false};
    for (const auto& s : probes) {
      if (s.steering == p.id) e.sessions[{s.sender, s.reflector}][s.candidate] = s.id;
    }
    std::vector<SteeringChoice> mine;
    for (const auto& c : *choices) {
      if (c.policy_id == p.id) mine.push_back(c);
    }
    auto sla = slas_.find(p.sla_id);
    Track(e, mine, sla != slas_.end() ? sla->second.limits : SlaLimits{});
    policies_.emplace(p.id, std::move(e));
  }
  return Status::Ok();
}

// ---- SLA classes ---------------------------------------------------------------------------
Result<SlaClass> SteeringService::CreateSla(const Tenant& owner, const SlaRequest& req) {
  if (req.name.empty() || Utf8Length(req.name) > 64) return ApiError(kBadRequest, "name", "must be 1 to 64 characters");
  const auto& l = req.limits;
  if (!l.delay_ms && !l.delay_p90_ms && !l.jitter_ms && !l.loss_pct) {
    return ApiError(kBadRequest, "limits", "at least one of delay_ms, delay_p90_ms, jitter_ms, loss_pct");
  }
  for (auto e : {CheckLimit(l.delay_ms, "delay_ms", 60'000), CheckLimit(l.delay_p90_ms, "delay_p90_ms", 60'000),
                 CheckLimit(l.jitter_ms, "jitter_ms", 60'000), CheckLimit(l.loss_pct, "loss_pct", 100)}) {
    if (e) return *e;
  }
  auto n = store_->NextId("sla");
  if (!n) return n.error();
  SlaClass c{"sla" + std::to_string(*n), owner.id, req.name, req.limits, NowUtcMs()};
  if (auto st = store_->PutSla(c); !st) return st.error();
  std::lock_guard lock(mu_);
  slas_[c.id] = c;
  SEGWAN_LOG(kInfo, "steering") << "SLA class " << c.id << " (" << c.name << ") of " << c.tenant_id << " created";
  return c;
}

std::vector<SlaClass> SteeringService::Slas(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<SlaClass> out;
  for (const auto& [id, c] : slas_) {
    if (p.Sees(c.tenant_id)) out.push_back(c);
  }
  return out;
}

Result<SlaClass> SteeringService::GetSla(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = slas_.find(id);
  if (it == slas_.end() || !p.Sees(it->second.tenant_id)) return ApiError(kNotFound, "id", "no SLA class '" + id + "'");
  return it->second;
}

Status SteeringService::DeleteSla(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);  // the store call is local; a policy made meanwhile would find it gone
  auto it = slas_.find(id);
  if (it == slas_.end() || !p.Sees(it->second.tenant_id)) return ApiError(kNotFound, "id", "no SLA class '" + id + "'");
  for (const auto& [pid, e] : policies_) {
    if (e.policy.sla_id == id) return ApiError(kConflict, "id", "steering policy " + pid + " uses SLA class " + id + "; delete it first");
  }
  if (auto st = store_->DeleteSla(id); !st) return st.error();
  slas_.erase(it);
  return Status::Ok();
}

// ---- policies ------------------------------------------------------------------------------
// The default candidates of a direction: the slice's own path first (what the traffic takes
// now), then the underlay's route and one via each core SID, each once.
std::vector<SteeringCandidate> SteeringService::Candidates(const Slice& s, const std::string& from,
                                                           const std::string& to,
                                                           const std::vector<SteeringCandidate>& asked) const {
  if (!asked.empty()) return asked;
  std::vector<SteeringCandidate> all{{"direct", {}}};
  for (const auto& c : o_.cores) all.push_back(c);
  const auto pinned = PathWaypoints(s, from, to);
  auto it = std::find_if(all.begin(), all.end(), [&](const auto& c) { return c.waypoints == pinned; });
  if (it == all.end()) all.insert(all.begin(), SteeringCandidate{"slice", pinned});
  else std::rotate(all.begin(), it, it + 1);
  return all;
}

void SteeringService::Track(const Entry& e, const std::vector<SteeringChoice>& choices, const SlaLimits& limits) {
  const auto& pol = e.policy;
  for (const auto& pair : pol.pairs) {
    const Key key{pol.id, pair.from, pair.to};
    std::vector<std::string> names;
    for (const auto& c : pair.candidates) names.push_back(c.name);
    SteeringChoice choice{pol.id, pair.from, pair.to, names.empty() ? "" : names.front(), 0};
    for (const auto& c : choices) {
      if (c.from == pair.from && c.to == pair.to) choice = c;
    }
    directions_.erase(key);
    directions_.emplace(key, Direction{DirectionJudge(names, limits, pol.probe, choice.active,
                                                      choice.since_ms ? std::optional<int64_t>(choice.since_ms) : std::nullopt),
                                       choice.since_ms, 0});
    auto sessions = e.sessions.find({pair.from, pair.to});
    if (sessions == e.sessions.end()) continue;
    for (const auto& [candidate, sid] : sessions->second) {
      probes_.insert_or_assign(sid, Probe{key, candidate, ProbeWindows(pol.probe.window_ms, pol.probe.interval_ms)});
    }
  }
}

PolicyView SteeringService::ViewOf(const Entry& e) {
  PolicyView v{e.policy, {}};
  for (const auto& pair : e.policy.pairs) {
    DirectionView d{pair.from, pair.to, "", 0, false, {}};
    auto dir = directions_.find({e.policy.id, pair.from, pair.to});
    if (dir != directions_.end()) {
      d.active = dir->second.judge.active();
      d.since_ms = dir->second.since_ms;
      d.violated = dir->second.judge.violated();
    }
    auto sessions = e.sessions.find({pair.from, pair.to});
    for (const auto& c : pair.candidates) {
      CandidateView cv{c, "", std::nullopt, false};
      if (sessions != e.sessions.end()) {
        if (auto s = sessions->second.find(c.name); s != sessions->second.end()) cv.session_id = s->second;
      }
      if (dir != directions_.end()) {
        for (const auto& st : dir->second.judge.candidates()) {
          if (st.name == c.name) {
            cv.last = st.last;
            cv.complies = st.complies;
          }
        }
      }
      d.candidates.push_back(std::move(cv));
    }
    v.directions.push_back(std::move(d));
  }
  return v;
}

void SteeringService::Discard(const std::vector<std::string>& session_ids) {
  const Principal op{true, ""};
  for (const auto& id : session_ids) {
    if (auto st = sessions_->Delete(op, id, true); !st && st.error().code != kNotFound) {
      SEGWAN_LOG(kWarn, "steering") << "removing probe " << id << ": " << st.error().message;
    }
  }
}

// Puts a slice's paths, as they stand now, on the edge a steered direction leaves from. On the
// edge's own worker: the switch waits for nobody else's edge.
void SteeringService::Apply(const std::string& slice_id, const std::string& from) {
  auto task = [this, slice_id, from] {
    if (auto st = slices_->Reapply(slice_id, from); !st) {
      SEGWAN_LOG(kWarn, "steering") << slice_id << " on " << from << ": " << st.error().message << " (left to reconciliation)";
      if (hooks_.converge) hooks_.converge(from);
    }
  };
  if (hooks_.on_edge) hooks_.on_edge(from, task);
  else task();
}

Result<PolicyView> SteeringService::CreatePolicy(const Tenant& owner, const PolicyRequest& req) {
  const auto& pr = req.probe;
  if (pr.interval_ms < 10 || pr.interval_ms > 1000) return ApiError(kBadRequest, "probe.interval_ms", "must be 10 to 1000");
  if (pr.window_ms < pr.interval_ms || pr.window_ms > 60'000) {
    return ApiError(kBadRequest, "probe.window_ms", "must be at least probe.interval_ms and at most 60000");
  }
  if (pr.windows < 1 || pr.windows > 20) return ApiError(kBadRequest, "probe.windows", "must be 1 to 20");
  if (pr.hold_down_s < 1 || pr.hold_down_s > 3600) return ApiError(kBadRequest, "probe.hold_down_s", "must be 1 to 3600");
  if (req.candidates.size() > kMaxCandidates) {
    return ApiError(kBadRequest, "candidates", "at most " + std::to_string(kMaxCandidates));
  }
  for (size_t k = 0; k < req.candidates.size(); ++k) {
    const auto& c = req.candidates[k];
    const std::string f = "candidates[" + std::to_string(k) + "]";
    if (!IsValidIdentifier(c.name, 32)) return ApiError(kBadRequest, f + ".name", "must match [a-z0-9][a-z0-9-]{0,31}");
    for (size_t j = 0; j < k; ++j) {
      if (req.candidates[j].name == c.name) return ApiError(kBadRequest, f + ".name", "'" + c.name + "' is named twice");
    }
    if (c.waypoints.size() > kMaxWaypoints) {
      return ApiError(kBadRequest, f + ".waypoints", "at most " + std::to_string(kMaxWaypoints));
    }
    for (size_t w = 0; w < c.waypoints.size(); ++w) {
      if (!ParseIpv6(c.waypoints[w])) {
        return ApiError(kBadRequest, f + ".waypoints[" + std::to_string(w) + "]", "'" + c.waypoints[w] + "' is not an IPv6 SID");
      }
    }
  }
  auto slice = slices_->ForNewSession(owner.id, req.slice);
  if (!slice) return slice.error();
  SlaLimits limits;
  {
    std::lock_guard lock(mu_);
    auto sla = slas_.find(req.sla);
    if (sla == slas_.end() || sla->second.tenant_id != owner.id) return ApiError(kNotFound, "sla", "no SLA class '" + req.sla + "'");
    limits = sla->second.limits;
  }
  std::vector<std::string> devices;
  for (const auto& site : slice->sites) {
    if (std::find(devices.begin(), devices.end(), site.device) == devices.end()) devices.push_back(site.device);
  }
  std::vector<SteeringPair> pairs = req.pairs;
  if (pairs.empty()) {
    for (const auto& a : devices) {
      for (const auto& b : devices) {
        if (a != b) pairs.push_back({a, b, {}});
      }
    }
  }
  size_t probes = 0;
  for (size_t k = 0; k < pairs.size(); ++k) {
    auto& pair = pairs[k];
    const std::string f = "pairs[" + std::to_string(k) + "]";
    for (const auto& [d, field] : {std::pair{pair.from, ".from"}, std::pair{pair.to, ".to"}}) {
      if (std::find(devices.begin(), devices.end(), d) == devices.end()) {
        return ApiError(kBadRequest, f + field, "'" + d + "' is not a device of slice " + slice->id);
      }
    }
    if (pair.from == pair.to) return ApiError(kBadRequest, f + ".to", "must differ from from");
    for (size_t j = 0; j < k; ++j) {
      if (pairs[j].from == pair.from && pairs[j].to == pair.to) return ApiError(kBadRequest, f, "this direction is named twice");
    }
    pair.candidates = Candidates(*slice, pair.from, pair.to, req.candidates);
    probes += pair.candidates.size();
  }
  if (probes > kMaxProbesPerPolicy) {
    return ApiError(kBadRequest, "pairs", std::to_string(probes) + " probe sessions (directions x candidates); at most " +
                                              std::to_string(kMaxProbesPerPolicy));
  }
  SteeringPolicy pol;
  pol.tenant_id = owner.id;
  pol.slice_id = slice->id;
  pol.sla_id = req.sla;
  pol.pairs = pairs;
  pol.candidates = req.candidates;
  pol.probe = pr;
  pol.created_ms = NowUtcMs();
  {
    // Reserved before its probes are made: a second policy on the slice, or the slice's
    // deletion, sees it.
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : policies_) {
      if (e.policy.slice_id == slice->id) {
        return ApiError(kConflict, "slice", "slice " + slice->id + " is steered by " + (e.creating ? "a policy being created" : "policy " + id));
      }
    }
    auto n = store_->NextId("steering");
    if (!n) return n.error();
    pol.id = "st" + std::to_string(*n);
    policies_[pol.id] = Entry{pol, {}, true, false};
  }
  auto forget = [&] {
    std::lock_guard lock(mu_);
    policies_.erase(pol.id);
  };
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> sessions;
  std::vector<std::string> made;
  for (size_t k = 0; k < pol.pairs.size(); ++k) {
    const auto& pair = pol.pairs[k];
    for (const auto& c : pair.candidates) {
      SessionRequest sr;
      sr.slice = pol.slice_id;
      sr.sender = pair.from;
      sr.reflector = pair.to;
      sr.interval_ms = pr.interval_ms;
      sr.start = true;
      sr.steering = pol.id;
      sr.candidate = c.name;
      sr.waypoints = c.waypoints;
      auto s = sessions_->Create(owner, sr);
      if (!s) {
        Discard(made);
        forget();
        Error e = s.error();
        e.field = "pairs[" + std::to_string(k) + "]";
        e.message = "probing " + pair.from + " -> " + pair.to + " via " + c.name + ": " + e.message;
        return e;
      }
      made.push_back(s->session.id);
      sessions[{pair.from, pair.to}][c.name] = s->session.id;
    }
  }
  std::vector<SteeringChoice> choices;
  for (const auto& pair : pol.pairs) choices.push_back({pol.id, pair.from, pair.to, pair.candidates.front().name, 0});
  if (auto st = store_->PutPolicy(pol, choices); !st) {
    Discard(made);
    forget();
    return st.error();
  }
  PolicyView view;
  {
    std::lock_guard lock(mu_);
    auto& e = policies_[pol.id];
    e.creating = false;
    e.sessions = std::move(sessions);
    Track(e, choices, limits);
    view = ViewOf(e);
  }
  std::set<std::string> froms;
  for (const auto& pair : pol.pairs) froms.insert(pair.from);
  for (const auto& f : froms) Apply(pol.slice_id, f);  // the preferred candidates in place
  SEGWAN_LOG(kInfo, "steering") << "policy " << pol.id << " steers " << pol.pairs.size() << " direction(s) of "
                                << pol.slice_id << " under " << pol.sla_id << " with " << made.size() << " probes";
  return view;
}

std::vector<PolicyView> SteeringService::Policies(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<PolicyView> out;
  for (const auto& [id, e] : policies_) {
    if (!e.creating && p.Sees(e.policy.tenant_id)) out.push_back(ViewOf(e));
  }
  return out;
}

Result<PolicyView> SteeringService::GetPolicy(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = policies_.find(id);
  if (it == policies_.end() || it->second.creating || !p.Sees(it->second.policy.tenant_id)) {
    return ApiError(kNotFound, "id", "no steering policy '" + id + "'");
  }
  return ViewOf(it->second);
}

Status SteeringService::DeletePolicy(const Principal& p, const std::string& id) {
  SteeringPolicy pol;
  std::vector<std::string> probes;
  {
    std::lock_guard lock(mu_);
    auto it = policies_.find(id);
    if (it == policies_.end() || it->second.creating || !p.Sees(it->second.policy.tenant_id)) {
      return ApiError(kNotFound, "id", "no steering policy '" + id + "'");
    }
    if (it->second.busy) return ApiError(kConflict, "id", "steering policy " + id + " is being deleted");
    it->second.busy = true;
    pol = it->second.policy;
    for (const auto& [pair, by_candidate] : it->second.sessions) {
      for (const auto& [c, sid] : by_candidate) probes.push_back(sid);
    }
  }
  if (auto st = store_->DeletePolicy(id); !st) {
    std::lock_guard lock(mu_);
    policies_[id].busy = false;
    return st.error();
  }
  {
    std::lock_guard lock(mu_);
    policies_.erase(id);
    std::erase_if(directions_, [&](const auto& d) { return std::get<0>(d.first) == id; });
    std::erase_if(probes_, [&](const auto& x) { return std::get<0>(x.second.key) == id; });
  }
  Discard(probes);
  std::set<std::string> froms;
  for (const auto& pair : pol.pairs) froms.insert(pair.from);
  for (const auto& f : froms) Apply(pol.slice_id, f);  // back to the slice's own paths
  SEGWAN_LOG(kInfo, "steering") << "policy " << id << " deleted";
  return Status::Ok();
}

Result<std::vector<SteeringEvent>> SteeringService::Events(const Principal& p, const std::string& slice,
                                                           int64_t before_id, size_t limit) {
  return store_->Events(p.is_operator ? "" : p.tenant_id, slice, before_id, limit);
}

// ---- for the slices ---------------------------------------------------------------------------
std::vector<SlicePath> SteeringService::Steered(const std::string& slice_id) {
  std::vector<SlicePath> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : policies_) {
    if (e.creating || e.policy.slice_id != slice_id) continue;
    for (const auto& pair : e.policy.pairs) {
      auto dir = directions_.find({id, pair.from, pair.to});
      if (dir == directions_.end()) continue;
      for (const auto& c : pair.candidates) {
        if (c.name == dir->second.judge.active()) out.push_back({pair.from, pair.to, c.waypoints});
      }
    }
  }
  return out;
}

std::optional<Error> SteeringService::CheckSlice(const Slice& prev, const Slice* next) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : policies_) {
    if (e.policy.slice_id != prev.id) continue;
    const std::string who = e.creating ? "a steering policy being created" : "steering policy " + id;
    if (!next) return ApiError(kConflict, "id", "slice " + prev.id + " is steered by " + who + "; delete it first");
    for (const auto& pair : e.policy.pairs) {
      for (const auto& d : {pair.from, pair.to}) {
        if (std::none_of(next->sites.begin(), next->sites.end(), [&](const auto& x) { return x.device == d; })) {
          return ApiError(kConflict, "sites", who + " steers " + pair.from + " -> " + pair.to + "; delete it first");
        }
      }
    }
  }
  return std::nullopt;
}

// ---- measuring and acting -----------------------------------------------------------------------
void SteeringService::Tap(const std::string& session_id, const std::vector<Sample>& samples) {
  const TaiUtc tai{o_.tai_offset_s};
  std::lock_guard lock(mu_);
  auto it = probes_.find(session_id);
  if (it == probes_.end()) return;
  for (const auto& s : samples) it->second.windows.Add(s.seq, tai.UtcMs(s.t1), s.direct_ms());
}

void SteeringService::Tick(int64_t now_ms) {
  struct Act {
    SteeringChoice choice;
    std::string slice;
    std::vector<SteeringEvent> events;
    bool switched = false;
  };
  std::vector<Act> acts;
  {
    std::lock_guard lock(mu_);
    // Every candidate's windows, oldest first; at the same end, the active candidate's last,
    // so its verdict sees the others' windows of the same span.
    struct Due {
      WindowMeasure m;
      Probe* probe;
      bool active;
    };
    std::vector<Due> due;
    for (auto& [sid, pr] : probes_) {
      auto dir = directions_.find(pr.key);
      const bool active = dir != directions_.end() && dir->second.judge.active() == pr.candidate;
      for (auto& m : pr.windows.Close(now_ms - o_.grace_ms)) due.push_back({m, &pr, active});
    }
    std::sort(due.begin(), due.end(), [](const Due& a, const Due& b) {
      return a.m.end_ms != b.m.end_ms ? a.m.end_ms < b.m.end_ms : a.active < b.active;
    });
    for (auto& d : due) {
      auto dir = directions_.find(d.probe->key);
      auto pol = policies_.find(std::get<0>(d.probe->key));
      if (dir == directions_.end() || pol == policies_.end()) continue;
      auto decision = dir->second.judge.Window(d.probe->candidate, d.m);
      if (decision.events.empty() && !decision.switch_to) continue;
      for (auto& e : decision.events) {
        e.tenant_id = pol->second.policy.tenant_id;
        e.slice_id = pol->second.policy.slice_id;
        e.policy_id = pol->first;
        e.from = std::get<1>(d.probe->key);
        e.to = std::get<2>(d.probe->key);
      }
      if (decision.switch_to) {
        dir->second.since_ms = d.m.end_ms;
        ++dir->second.switches;
      }
      const SteeringChoice choice{pol->first, std::get<1>(d.probe->key), std::get<2>(d.probe->key),
                                  dir->second.judge.active(), dir->second.since_ms};
      acts.push_back({choice, pol->second.policy.slice_id, std::move(decision.events), decision.switch_to.has_value()});
    }
  }
  for (auto& a : acts) {
    for (const auto& e : a.events) {
      SEGWAN_LOG(kInfo, "steering")
          << e.policy_id << " " << e.from << " -> " << e.to << ": " << e.kind << " on " << e.path
          << (e.to_path.empty() ? "" : ", traffic to " + e.to_path) << " (delay " << FormatNumber(e.measured.delay_ms)
          << " ms, loss " << FormatNumber(e.measured.loss_pct) << " %)";
    }
    // Kept before it is applied: a controller that restarts now puts the new path in place.
    const Status st = a.switched ? store_->PutChoice(a.choice, a.events) : store_->AddEvents(a.events);
    if (!st) SEGWAN_LOG(kWarn, "steering") << "keeping " << a.choice.policy_id << ": " << st.error().message;
    if (hooks_.alert) {
      for (const auto& e : a.events) {
        if (e.kind != "switch") hooks_.alert(e);
      }
    }
    if (a.switched) Apply(a.slice, a.choice.from);
  }
}

SteeringMetrics SteeringService::Metrics() {
  SteeringMetrics m;
  std::lock_guard lock(mu_);
  for (const auto& [key, d] : directions_) {
    auto pol = policies_.find(std::get<0>(key));
    std::vector<std::string> names;
    for (const auto& c : d.judge.candidates()) names.push_back(c.name);
    m.directions.push_back({std::get<0>(key), pol != policies_.end() ? pol->second.policy.tenant_id : "",
                            std::get<1>(key), std::get<2>(key), d.judge.active(), std::move(names), d.switches});
  }
  return m;
}

}  // namespace segwan::controller
