#include "edge-os/sessions/loss_sessions.h"

#include <algorithm>

#include "edge-os/controller/errors.h"
#include "edge-os/monitoring/loss_periods.h"
#include "segwan/clock.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace pb = segwan::v1;

namespace {

pb::LossDirection DirOf(bool ingress) { return ingress ? pb::LOSS_DIRECTION_INGRESS : pb::LOSS_DIRECTION_EGRESS; }

IngressReading ReadingOf(const pb::ReadLossCountersResponse& x) {
  IngressReading out{x.period_index(), x.active_colour(), x.colour_switched_at_ns(), {}};
  for (const auto& c : x.counters()) out.packets[c.colour() & 1] = c.packets();
  return out;
}

}  // namespace

Status LossSessions::Load() {
  auto losses = store_->LossSessions();
  if (!losses) return losses.error();
  for (auto& s : *losses) {
    Entry e;
    auto cursor = store_->GetLossCursor(s.id);
    auto last = store_->LastLossPeriod(s.id);
    if (!cursor || !last) return cursor ? last.error() : cursor.error();
    e.cursor = *cursor;
    e.last = *last;
    e.s = s;
    std::lock_guard lock(mu_);
    loss_.emplace(s.id, std::move(e));
  }
  return Status::Ok();
}

// The egress counts before the ingress marks, so that no marked packet goes uncounted.
Status LossSessions::Push(const LossSession& s) {
  for (bool ingress : {false, true}) {
    auto client = devices_->Client(ingress ? s.from : s.to);
    if (!client) return Error{"a device of the session is gone", "", kNotFound};
    if (auto st = client->StartLossMonitoring(s.segments, DirOf(ingress), s.period_ms); !st) return st;
  }
  return Status::Ok();
}

void LossSessions::Stop(const LossSession& s, bool ingress) {
  const auto& d = ingress ? s.from : s.to;
  auto client = devices_->Client(d);
  if (!client) return;
  auto edge_lock = locks_->Lock(d);
  if (auto st = client->StopLossMonitoring(s.segments, DirOf(ingress)); !st && st.error().code != kGrpcNotFound) {
    SEGWAN_LOG(kWarn, "loss") << "stopping " << s.id << " on " << d << ": " << st.error().message;
  }
}

Result<LossView> LossSessions::Create(const Tenant& owner, const LossRequest& req) {
  if (req.family != "ipv6" && req.family != "ipv4") return ApiError(kBadRequest, "family", "must be \"ipv6\" or \"ipv4\"");
  if (req.period_ms < 1000 || req.period_ms > 3'600'000) return ApiError(kBadRequest, "period_ms", "must be 1000 to 3600000");
  if (req.from == req.to) return ApiError(kBadRequest, "to", "must differ from from");
  auto slice = slices_->ForNewSession(owner.id, req.slice);
  if (!slice) return slice.error();
  // The SID list the flow's traffic takes now: SLA steering may have moved it off the slice's own.
  auto segs = slices_->FlowSegments(slices_->Effective(*slice), req.from, req.to, req.family);
  if (!segs) return ApiError(kBadRequest, segs.error().field, segs.error().message);
  for (const auto* f : {"from", "to"}) {
    const auto& id = std::string(f) == "from" ? req.from : req.to;
    auto d = devices_->Find(id);
    if (!d || std::find(d->capabilities.begin(), d->capabilities.end(), "loss") == d->capabilities.end()) {
      return ApiError(kUnprocessable, f, "device '" + id + "' has no loss monitoring (its agent could not load the programs)");
    }
  }
  for (const auto* f : {"from", "to"}) {
    const auto& d = std::string(f) == "from" ? req.from : req.to;
    if (!devices_->Reachable(d)) return ApiError(kConflict, f, "device '" + d + "' is not connected or not enabled");
  }
  LossSession s;
  s.tenant_id = owner.id;
  s.slice_id = req.slice;
  s.from = req.from;
  s.to = req.to;
  s.family = req.family;
  s.period_ms = req.period_ms;
  s.segments = *segs;
  // Reserved with the duplicate check, then the shares and the slice are checked again (see
  // DelaySessions::Create).
  std::string key;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : loss_) {
      if (e.s.slice_id == s.slice_id && e.s.from == s.from && e.s.to == s.to && e.s.family == s.family) {
        return ApiError(kConflict, "to", (e.creating ? "a loss session being created" : "loss session " + id) +
                                             " already monitors this flow");
      }
    }
    key = "?" + std::to_string(++reservations_);
    loss_[key].s = s;
    loss_[key].creating = true;
  }
  auto forget = [&](const std::string& k) {
    std::lock_guard lock(mu_);
    loss_.erase(k);
  };
  if (quota_) {
    if (auto e = quota_(owner.id, {req.from, req.to})) {
      forget(key);
      return *e;
    }
  }
  if (auto again = slices_->ForNewSession(owner.id, req.slice); !again) {
    forget(key);
    return again.error();
  }
  if (!devices_->Find(req.from) || !devices_->Find(req.to)) {
    forget(key);
    return ApiError(kConflict, "from", "a device of the session is being deleted");
  }
  const auto n = store_->NextId("loss");
  if (!n) {
    forget(key);
    return n.error();
  }
  s.id = "ls" + std::to_string(*n);
  s.created_ms = NowUtcMs();
  {
    std::lock_guard lock(mu_);
    loss_.erase(key);
    loss_[s.id].s = s;
    loss_[s.id].creating = true;
  }
  for (bool ingress : {false, true}) {  // egress first (see Push)
    const auto& d = ingress ? s.from : s.to;
    auto st = [&] {
      auto edge_lock = locks_->Lock(d);
      return devices_->Client(d)->StartLossMonitoring(s.segments, DirOf(ingress), s.period_ms);
    }();
    if (!st) {
      if (ingress) Stop(s, false);
      forget(s.id);
      return EdgeError(ingress ? "from" : "to", st.error());
    }
  }
  if (auto st = store_->PutLossSession(s); !st) {
    Stop(s, true);
    Stop(s, false);
    forget(s.id);
    return st.error();
  }
  std::lock_guard lock(mu_);
  auto& e = loss_[s.id];
  e.creating = false;
  SEGWAN_LOG(kInfo, "loss") << "loss session " << s.id << " " << s.from << " -> " << s.to << " on " << s.slice_id
                            << " (" << s.family << ", period " << s.period_ms << " ms)";
  return LossView{e.s, e.error, e.last};
}

std::vector<LossView> LossSessions::List(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<LossView> out;
  for (const auto& [id, e] : loss_) {
    if (!e.creating && p.Sees(e.s.tenant_id)) out.push_back({e.s, e.error, e.last});
  }
  return out;
}

Result<LossView> LossSessions::Get(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = loss_.find(id);
  if (it == loss_.end() || it->second.creating || !p.Sees(it->second.s.tenant_id)) {
    return ApiError(kNotFound, "id", "no loss session '" + id + "'");
  }
  return LossView{it->second.s, it->second.error, it->second.last};
}

Status LossSessions::Delete(const Principal& p, const std::string& id) {
  LossSession s;
  {
    std::lock_guard lock(mu_);
    auto it = loss_.find(id);
    if (it == loss_.end() || it->second.creating || !p.Sees(it->second.s.tenant_id)) {
      return ApiError(kNotFound, "id", "no loss session '" + id + "'");
    }
    if (it->second.busy) return ApiError(kConflict, "id", "loss session " + id + " is being deleted");
    it->second.busy = true;
    s = it->second.s;
  }
  {
    std::lock_guard write(write_mu_);  // no period of it is being written
    // Forgotten first: a store that cannot forget it leaves the session as it was.
    if (auto st = store_->DeleteLossSession(id); !st) {
      std::lock_guard lock(mu_);
      loss_[id].busy = false;
      return st.error();
    }
    std::lock_guard lock(mu_);
    loss_.erase(id);
  }
  for (bool ingress : {true, false}) {
    // An edge that is away loses unpinned counters at restart anyway.
    if (devices_->Reachable(ingress ? s.from : s.to)) Stop(s, ingress);
  }
  SEGWAN_LOG(kInfo, "loss") << "loss session " << id << " deleted";
  return Status::Ok();
}

Result<std::vector<LossPeriod>> LossSessions::Periods(const Principal& p, const std::string& id, int64_t since_ms,
                                                      size_t limit) {
  if (auto v = Get(p, id); !v) return v.error();
  return store_->LossPeriods(id, since_ms, limit);
}

// Half a period after the ingress switched colour, the colour it stopped painting is final at
// both ends: its cumulative counters, less those at that colour's previous close, are the
// period's sent and received packets.
void LossSessions::Poll(const std::string& from) {
  std::vector<Entry> jobs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : loss_) {
      if (!e.creating && e.s.from == from) jobs.push_back(e);
    }
  }
  // When this ingress is to be read again for its soonest period, besides the regular polls.
  std::optional<uint64_t> due_tai;
  auto due = [&](const LossCursor& c, const IngressReading& in, uint32_t period_ms) {
    const uint64_t t = NextLossDueTaiNs(c, in, period_ms);
    if (!due_tai || t < *due_tai) due_tai = t;
  };
  for (auto& job : jobs) {
    if (!devices_->Reachable(job.s.from) || !devices_->Reachable(job.s.to)) continue;
    if (!FollowPath(job)) continue;
    const auto& s = job.s;
    auto tx = devices_->Client(s.from)->ReadLossCounters(s.segments, pb::LOSS_DIRECTION_INGRESS);
    std::optional<LossPeriod> period;
    LossCursor cursor = job.cursor;
    std::string err;
    if (!tx) {
      err = tx.error().message;
    } else {
      const auto in = ReadingOf(*tx);
      switch (NextLossStep(cursor, in, NowTaiNs(), s.period_ms)) {
        case LossStepKind::kNothing:
          due(cursor, in, s.period_ms);
          continue;  // nothing closed yet
        case LossStepKind::kRestarted:
          cursor = RebaseLossCursor(cursor, in.period_index);  // the agent restarted: its period count did too
          break;
        case LossStepKind::kNeedEgress: {
          auto rx = devices_->Client(s.to)->ReadLossCounters(s.segments, pb::LOSS_DIRECTION_EGRESS);
          if (!rx) {
            err = rx.error().message;
            break;
          }
          const auto closed = CloseLossPeriod(cursor, in, ReadingOf(*rx).packets, s.period_ms, tai_offset_s_);
          if (!closed.period) {
            SEGWAN_LOG(kWarn, "loss") << s.id << ": counters went back (an agent restarted unpinned); starting over";
          }
          cursor = closed.cursor;
          period = closed.period;
          break;
        }
      }
      due(cursor, in, s.period_ms);
    }
    // A period the store cannot keep is not taken: the cursor stays, and the next poll
    // computes the same period again (the counters only grow).
    std::lock_guard write(write_mu_);
    {
      std::lock_guard lock(mu_);
      if (!loss_.count(s.id)) continue;  // deleted meanwhile
    }
    if (err.empty()) {
      if (auto st = store_->WriteLossPeriod(s.id, period, cursor); !st) err = st.error().message;
    }
    std::lock_guard lock(mu_);
    auto it = loss_.find(s.id);
    if (!err.empty()) {
      ++errors_;
      if (it->second.error != err) SEGWAN_LOG(kWarn, "loss") << s.id << ": " << err;
      it->second.error = err;
      continue;
    }
    it->second.error.clear();
    it->second.cursor = cursor;
    if (period) it->second.last = period;
  }
  {
    std::lock_guard lock(mu_);
    if (!due_tai) {
      due_.erase(from);
      return;
    }
    const uint64_t now = NowTaiNs();
    const auto wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::nanoseconds(*due_tai > now ? *due_tai - now : 0));
    due_[from] = std::chrono::steady_clock::now() + wait;
  }
  if (wake_) wake_();  // the scheduler may be waiting for a later time (not under mu_: it reads NextDue)
}

// A flow's counters are keyed by its SID list on both edges. When SLA steering moves the
// flow's traffic to another path, the monitoring moves with it: the new list is monitored at
// the egress first (so that nothing the ingress marks goes uncounted), then at the ingress,
// then the old list stops at both. The period the move cuts short is not reported (its packets
// were counted under two keys), nor is the new list's first period of a colour whose counts
// could change between the two first readings (MovedLossCursor); the session's period numbers
// go on where they were. Until the move is done (an edge away or
// refusing), the old list stays and the error says why.
bool LossSessions::FollowPath(Entry& job) {
  const auto slice = slices_->Find(job.s.slice_id);
  if (!slice) return true;  // the slice is going: its deletion ends the session
  const auto now = slices_->FlowSegments(slices_->Effective(*slice), job.s.from, job.s.to, job.s.family);
  if (!now || *now == job.s.segments) return true;
  LossSession next = job.s;
  next.segments = *now;
  auto fail = [&](const std::string& what, const Error& e, bool started_egress, bool started_ingress) {
    if (started_ingress) Stop(next, true);
    if (started_egress) Stop(next, false);
    SetError(job.s.id, "following the flow to its new path: " + what + ": " + e.message);
    ++errors_;
    return false;
  };
  for (bool ingress : {false, true}) {
    const auto& d = ingress ? next.from : next.to;
    auto st = [&] {
      auto edge_lock = locks_->Lock(d);
      return devices_->Client(d)->StartLossMonitoring(next.segments, DirOf(ingress), next.period_ms);
    }();
    if (!st) return fail(d, st.error(), ingress, false);
  }
  auto tx = devices_->Client(next.from)->ReadLossCounters(next.segments, pb::LOSS_DIRECTION_INGRESS);
  if (!tx) return fail(next.from, tx.error(), true, true);
  auto rx = devices_->Client(next.to)->ReadLossCounters(next.segments, pb::LOSS_DIRECTION_EGRESS);
  if (!rx) return fail(next.to, rx.error(), true, true);
  const LossCursor cursor =
      MovedLossCursor(job.cursor, ReadingOf(*tx), ReadingOf(*rx).packets, NowTaiNs(), next.period_ms);
  {
    std::lock_guard write(write_mu_);
    bool gone;
    {
      std::lock_guard lock(mu_);
      gone = !loss_.count(next.id);
    }
    if (gone) {  // deleted meanwhile: its deletion stopped the old list
      Stop(next, true);
      Stop(next, false);
      return false;
    }
    Status st = store_->PutLossSession(next);
    if (st) st = store_->WriteLossPeriod(next.id, std::nullopt, cursor);
    if (!st) return fail("the store", st.error(), true, true);
    std::lock_guard lock(mu_);
    auto& e = loss_[next.id];
    e.s = next;
    e.cursor = cursor;
    e.error.clear();
  }
  Stop(job.s, true);
  Stop(job.s, false);
  std::string path;
  for (const auto& sid : next.segments) path += (path.empty() ? "" : ",") + sid;
  SEGWAN_LOG(kInfo, "loss") << "loss session " << next.id << " follows its flow to " << path;
  job.s = next;
  job.cursor = cursor;
  return true;
}

std::vector<LossSession> LossSessions::OfDevice(const std::string& device_id) {
  std::vector<LossSession> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : loss_) {
    if (!e.creating && (e.s.from == device_id || e.s.to == device_id)) out.push_back(e.s);
  }
  return out;
}

void LossSessions::SetError(const std::string& id, std::string error) {
  std::lock_guard lock(mu_);
  if (auto it = loss_.find(id); it != loss_.end()) it->second.error = std::move(error);
}

std::chrono::steady_clock::time_point LossSessions::NextDue() {
  std::lock_guard lock(mu_);
  auto next = std::chrono::steady_clock::time_point::max();
  for (const auto& [edge, t] : due_) next = std::min(next, t);
  return next;
}

std::set<std::string> LossSessions::TakeDue(std::chrono::steady_clock::time_point now) {
  std::set<std::string> out;
  std::lock_guard lock(mu_);
  for (auto it = due_.begin(); it != due_.end();) {
    if (it->second <= now) {
      out.insert(it->first);
      it = due_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::set<std::string> LossSessions::Ingresses() {
  std::set<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : loss_) {
    if (!e.creating) out.insert(e.s.from);
  }
  return out;
}

std::vector<std::string> LossSessions::OnSlice(const std::string& slice_id) {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : loss_) {
    if (e.s.slice_id == slice_id) out.push_back(e.creating ? "a loss session being created" : id);
  }
  return out;
}

std::optional<Error> LossSessions::CheckSliceChange(const Slice& next) {
  std::vector<Entry> mine;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : loss_) {
      if (e.s.slice_id == next.id) mine.push_back(e);
    }
  }
  for (const auto& e : mine) {
    auto segs = slices_->FlowSegments(slices_->Effective(next), e.s.from, e.s.to, e.s.family);
    if (!segs || *segs != e.s.segments) {
      return ApiError(kConflict, "sites", (e.creating ? std::string("a loss session being created") : "loss session " + e.s.id) +
                                              " monitors the flow " + e.s.from + " -> " + e.s.to +
                                              ", which this change would alter; delete it first");
    }
  }
  return std::nullopt;
}

std::optional<std::string> LossSessions::UserOf(const std::string& device_id) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : loss_) {
    if (e.s.from == device_id || e.s.to == device_id) return e.creating ? "a loss session being created" : "loss session " + id;
  }
  return std::nullopt;
}

void LossSessions::AddUsage(const std::string& tenant, SessionUsage* u) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : loss_) {
    u->tenant += e.s.tenant_id == tenant;
    ++u->per_device[e.s.from];
    ++u->per_device[e.s.to];
  }
}

}  // namespace segwan::controller
