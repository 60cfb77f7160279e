#include "edge-os/sessions/delay_sessions.h"

#include <algorithm>

#include "edge-os/controller/errors.h"
#include "edge-os/controller/tokens.h"
#include "edge-os/slices/planner.h"
#include "segwan/clock.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace pb = segwan::v1;

namespace {

std::vector<uint8_t> Unhex(const std::string& h) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

pb::StampRole RoleOf(bool sender_side) { return sender_side ? pb::STAMP_ROLE_SENDER : pb::STAMP_ROLE_REFLECTOR; }

}  // namespace

Status DelaySessions::Load() {
  auto sessions = store_->Sessions();
  if (!sessions) return sessions.error();
  std::lock_guard lock(mu_);
  for (auto& s : *sessions) {
    if (auto st = ingest_->Restore(s); !st) return st;
    sessions_.emplace(s.id, Entry{s, "", false, false});
  }
  return ingest_->RestoreCursors();
}

SessionView DelaySessions::ViewOf(const Entry& e) const {
  auto v = ingest_->Get(e.s.id);
  if (!v) return {e.s, {}, e.error};
  return {e.s, v->counters, !e.error.empty() ? e.error : v->error};
}

Result<pb::StampSessionParams> DelaySessions::Params(const DelaySession& s, bool sender_side) {
  auto slice = slices_->Find(s.slice_id);
  auto sender = devices_->Find(s.sender), reflector = devices_->Find(s.reflector);
  if (!slice || !sender || !reflector) return Error{"its slice or a device is gone", "", kNotFound};
  const auto a = StampAddress(*sender), b = StampAddress(*reflector);
  if (!a || !b) return Error{"a device has no address inside its locator", "", kUnprocessable};
  pb::StampSessionParams p;
  p.set_ssid(s.ssid);
  p.set_source_address(sender_side ? a->ToString() : b->ToString());
  p.set_peer_address(sender_side ? b->ToString() : a->ToString());
  const Slice path = slices_->Effective(*slice);
  const auto waypoints = sender_side ? (s.waypoints ? *s.waypoints : PathWaypoints(path, s.sender, s.reflector))
                                     : PathWaypoints(path, s.reflector, s.sender);
  for (const auto& w : waypoints) {
    p.add_segments(w);
  }
  if (sender_side) p.set_interval_ms(s.interval_ms);
  if (sender_side) p.set_follow_up_telemetry(s.follow_up_telemetry);
  p.set_timestamp_format(s.timestamp_format == TimestampFormat::kPtp ? pb::TIMESTAMP_FORMAT_PTPV2
                                                                     : pb::TIMESTAMP_FORMAT_NTP);
  p.set_reflector_mode(s.reflector_mode == ReflectorMode::kStateful ? pb::SESSION_REFLECTOR_MODE_STATEFUL
                                                                    : pb::SESSION_REFLECTOR_MODE_STATELESS);
  p.set_delay_mode(pb::DELAY_MEASUREMENT_MODE_TWO_WAY);
  p.set_engine(s.engine == EngineChoice::kEbpf        ? pb::STAMP_ENGINE_EBPF
               : s.engine == EngineChoice::kUserspace ? pb::STAMP_ENGINE_USERSPACE
                                                      : pb::STAMP_ENGINE_UNSPECIFIED);
  if (s.authenticated) {
    p.set_authentication_mode(pb::AUTHENTICATION_MODE_HMAC_SHA_256);
    p.mutable_auth_key()->set_key_id(1);
    const auto key = Unhex(s.auth_key_hex);
    p.mutable_auth_key()->set_key(std::string(key.begin(), key.end()));
  } else {
    p.set_authentication_mode(pb::AUTHENTICATION_MODE_UNAUTHENTICATED);
  }
  return p;
}

Status DelaySessions::Push(const DelaySession& s, bool sender_side, bool reconciling) {
  const std::string& device = sender_side ? s.sender : s.reflector;
  const auto role = RoleOf(sender_side);
  auto client = devices_->Client(device);
  if (!client) return Error{"device '" + device + "' is gone", "", kNotFound};
  const auto params = Params(s, sender_side);
  if (!params) return params.error();
  if (auto st = client->Init(role, params->source_address()); !st) return st;
  auto st = client->CreateStampSession(role, *params);
  if (!st && !(reconciling && st.error().code == kGrpcAlreadyExists)) return st;
  if (st && reconciling) ingest_->Restarted(s.id, sender_side);  // the edge counts from 0 again
  if (s.running) {
    if (auto r = client->StartStampSession(role, s.ssid); !r) return r;
  }
  return Status::Ok();
}

void DelaySessions::Destroy(const DelaySession& s, bool sender_side) {
  const auto& d = sender_side ? s.sender : s.reflector;
  auto client = devices_->Client(d);
  if (!client) return;
  auto edge_lock = locks_->Lock(d);
  auto st = client->DestroyStampSession(RoleOf(sender_side), s.ssid);
  if (!st && st.error().code != kGrpcNotFound) {
    SEGWAN_LOG(kWarn, "sessions") << "destroying " << s.id << " on " << d << ": " << st.error().message;
  }
}

Result<SessionView> DelaySessions::Create(const Tenant& owner, const SessionRequest& req) {
  if (req.interval_ms < 10 || req.interval_ms > 60000) return ApiError(kBadRequest, "interval_ms", "must be 10 to 60000");
  if (req.engine == EngineChoice::kEbpf && req.authenticated) {
    return ApiError(kBadRequest, "engine", "the eBPF engine takes unauthenticated sessions only (the HMAC covers the timestamps)");
  }
  if (req.engine == EngineChoice::kEbpf && req.follow_up_telemetry) {
    return ApiError(kBadRequest, "follow_up_telemetry", "the XDP collector reads no TLVs: use engine auto or userspace");
  }
  auto slice = slices_->ForNewSession(owner.id, req.slice);
  if (!slice) return slice.error();
  auto in_slice = [&](const std::string& d) {
    return std::any_of(slice->sites.begin(), slice->sites.end(), [&](const auto& x) { return x.device == d; });
  };
  if (!in_slice(req.sender)) return ApiError(kBadRequest, "sender", "'" + req.sender + "' is not a device of slice " + req.slice);
  if (!in_slice(req.reflector)) return ApiError(kBadRequest, "reflector", "'" + req.reflector + "' is not a device of slice " + req.slice);
  if (req.sender == req.reflector) return ApiError(kBadRequest, "reflector", "must differ from the sender");
  for (const auto* f : {"sender", "reflector"}) {
    const auto& id = std::string(f) == "sender" ? req.sender : req.reflector;
    auto d = devices_->Find(id);
    if (!d || !StampAddress(*d)) {
      return ApiError(kUnprocessable, f, "device '" + id + "' has no address inside its locator to run STAMP from");
    }
  }
  for (const auto* f : {"sender", "reflector"}) {
    const auto& id = std::string(f) == "sender" ? req.sender : req.reflector;
    if (!devices_->Reachable(id)) return ApiError(kConflict, f, "device '" + id + "' is not connected or not enabled");
  }
  DelaySession s;
  s.tenant_id = owner.id;
  s.slice_id = req.slice;
  s.sender = req.sender;
  s.reflector = req.reflector;
  // Reserved before the shares and the slice are checked again: a concurrent request, a
  // slice change or a device deletion either sees this reservation or is seen by it.
  std::string key;
  {
    std::lock_guard lock(mu_);
    key = "?" + std::to_string(++reservations_);
    sessions_[key] = Entry{s, "", true, false};
  }
  auto forget = [&](const std::string& k) {
    std::lock_guard lock(mu_);
    sessions_.erase(k);
  };
  if (quota_) {
    if (auto e = quota_(owner.id, {req.sender, req.reflector})) {
      forget(key);
      return *e;
    }
  }
  if (auto again = slices_->ForNewSession(owner.id, req.slice); !again) {
    forget(key);
    return again.error();
  }
  if (!devices_->Find(req.sender) || !devices_->Find(req.reflector)) {
    forget(key);
    return ApiError(kConflict, "sender", "a device of the session is being deleted");
  }
  const auto next_ssid = store_->NextId("ssid");
  if (!next_ssid || *next_ssid > 65535) {
    forget(key);
    if (!next_ssid) return next_ssid.error();
    return ApiError(kConflict, "", "no STAMP session ids left");
  }
  s.ssid = static_cast<uint32_t>(*next_ssid);
  s.id = "ds" + std::to_string(s.ssid);
  s.interval_ms = req.interval_ms;
  s.timestamp_format = req.timestamp_format;
  s.reflector_mode = req.reflector_mode;
  s.engine = req.engine;
  s.authenticated = req.authenticated;
  s.follow_up_telemetry = req.follow_up_telemetry;
  if (s.authenticated) s.auth_key_hex = RandomHex(32);
  s.running = req.start;
  s.created_ms = NowUtcMs();
  s.steering = req.steering;
  s.candidate = req.candidate;
  s.waypoints = req.waypoints;
  {
    std::lock_guard lock(mu_);
    sessions_.erase(key);
    sessions_[s.id] = Entry{s, "", true, false};
  }
  // The reflector first, so the first test packet finds it.
  auto push = [&](bool sender_side) {
    auto edge_lock = locks_->Lock(sender_side ? s.sender : s.reflector);
    return Push(s, sender_side, false);
  };
  if (auto st = push(false); !st) {
    Destroy(s, false);
    forget(s.id);
    return EdgeError("reflector", st.error());
  }
  if (auto st = push(true); !st) {
    Destroy(s, false);
    Destroy(s, true);
    forget(s.id);
    return EdgeError("sender", st.error());
  }
  if (auto st = store_->PutSession(s); !st) {
    Destroy(s, false);
    Destroy(s, true);
    forget(s.id);
    return st.error();
  }
  ingest_->Add(s);
  std::lock_guard lock(mu_);
  auto& e = sessions_[s.id];
  e.creating = false;
  SEGWAN_LOG(kInfo, "sessions") << "delay session " << s.id << " " << s.sender << " -> " << s.reflector
                                << " on " << s.slice_id << (s.running ? " started" : " created");
  return ViewOf(e);
}

std::vector<SessionView> DelaySessions::List(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<SessionView> out;
  for (const auto& [id, e] : sessions_) {
    if (!e.creating && p.Sees(e.s.tenant_id)) out.push_back(ViewOf(e));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.session.ssid < b.session.ssid; });
  return out;
}

Result<SessionView> DelaySessions::Get(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.creating || !p.Sees(it->second.s.tenant_id)) {
    return ApiError(kNotFound, "id", "no delay session '" + id + "'");
  }
  return ViewOf(it->second);
}

Result<DelaySession> DelaySessions::Begin(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.creating || !p.Sees(it->second.s.tenant_id)) {
    return ApiError(kNotFound, "id", "no delay session '" + id + "'");
  }
  if (it->second.busy) return ApiError(kConflict, "id", "delay session " + id + " is being changed; try again");
  it->second.busy = true;
  return it->second.s;
}

void DelaySessions::End(const std::string& id) {
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) it->second.busy = false;
}

// Starting asks both ends (the reflector first); stopping asks only the sender, and the
// reflector stays ready for packets still in flight.
Result<SessionView> DelaySessions::SetRunning(const Principal& p, const std::string& id, bool running) {
  auto s = Begin(p, id);
  if (!s) return s.error();
  if (!s->steering.empty()) {
    End(id);
    return ApiError(kConflict, "id", "delay session " + id + " probes for steering policy " + s->steering +
                                         "; it runs while the policy does");
  }
  if (s->running == running) {
    End(id);
    return Get(p, id);
  }
  auto fail = [&](Error e) {
    End(id);
    return e;
  };
  for (bool sender : {false, true}) {
    const auto& d = sender ? s->sender : s->reflector;
    const char* field = sender ? "sender" : "reflector";
    if (!running && !sender) continue;
    if (!devices_->Reachable(d)) {
      if (!running) continue;  // a sender that is away stops with its edge
      return fail(ApiError(kConflict, field, "device '" + d + "' is not connected"));
    }
    auto client = devices_->Client(d);
    auto edge_lock = locks_->Lock(d);
    auto st = running ? client->StartStampSession(RoleOf(sender), s->ssid) : client->StopStampSession(RoleOf(sender), s->ssid);
    if (!st && !(!running && st.error().code == kGrpcNotFound)) return fail(EdgeError(field, st.error()));
  }
  s->running = running;
  if (auto st = store_->PutSession(*s); !st) return fail(st.error());
  {
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(id); it != sessions_.end()) {
      it->second.s.running = running;
      it->second.busy = false;
    }
  }
  return Get(p, id);
}

Status DelaySessions::Delete(const Principal& p, const std::string& id, bool by_steering) {
  auto s = Begin(p, id);
  if (!s) return s.error();
  if (!s->steering.empty() && !by_steering) {
    End(id);
    return ApiError(kConflict, "id", "delay session " + id + " probes for steering policy " + s->steering +
                                         "; it goes with the policy");
  }
  // Forgotten first (with no write of its results in flight): a store that cannot forget it
  // leaves the session as it was.
  if (auto st = ingest_->Remove(id, [&] { return store_->DeleteSession(id); }); !st) {
    End(id);
    return st.error();
  }
  {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
  }
  for (bool sender : {true, false}) {
    // An edge that is away forgets its sessions when it restarts.
    if (devices_->Reachable(sender ? s->sender : s->reflector)) Destroy(*s, sender);
  }
  SEGWAN_LOG(kInfo, "sessions") << "delay session " << id << " deleted";
  return Status::Ok();
}

Result<std::vector<Sample>> DelaySessions::Results(const Principal& p, const std::string& id, int64_t since_ms,
                                                   size_t limit) {
  if (auto v = Get(p, id); !v) return v.error();
  return store_->Samples(id, TaiUtc{tai_offset_s_}.TaiNs(since_ms), limit);
}

Result<std::vector<std::pair<IntervalAggregate, bool>>> DelaySessions::Intervals(const Principal& p,
                                                                                 const std::string& id,
                                                                                 int64_t since_ms, size_t limit) {
  if (auto v = Get(p, id); !v) return v.error();
  return IntervalsOf(id, since_ms, limit);
}

Result<std::vector<std::pair<IntervalAggregate, bool>>> DelaySessions::IntervalsOf(const std::string& id,
                                                                                   int64_t since_ms, size_t limit) {
  return ingest_->Intervals(id, since_ms, limit);
}

Result<SessionStats> DelaySessions::Stats(const Principal& p, const std::string& id, int64_t since_ms) {
  auto v = Get(p, id);
  if (!v) return v.error();
  auto intervals = IntervalsOf(id, since_ms, 10'000'000);
  if (!intervals) return intervals.error();
  SessionStats st;
  st.since_ms = since_ms;
  st.stateful = v->session.reflector_mode == ReflectorMode::kStateful;
  for (const auto& [a, open] : *intervals) {
    if (st.samples == 0) st.since_ms = std::max(since_ms, a.start_ms);
    st.delays.Merge(a.delays);
    st.samples += a.delays.direct.count();
    st.sent += a.sent;
    st.received += a.received;
    st.lost += a.lost;
    st.lost_direct += a.lost_direct;
    st.lost_return += a.lost_return;
  }
  return st;
}

std::vector<DelaySession> DelaySessions::OfDevice(const std::string& device_id) {
  std::vector<DelaySession> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (!e.creating && (e.s.sender == device_id || e.s.reflector == device_id)) out.push_back(e.s);
  }
  return out;
}

void DelaySessions::SetError(const std::string& id, std::string error) {
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) it->second.error = std::move(error);
}

std::vector<std::pair<std::string, uint32_t>> DelaySessions::OfSender(const std::string& device_id) {
  std::vector<std::pair<std::string, uint32_t>> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (!e.creating && e.s.sender == device_id) out.emplace_back(id, e.s.ssid);
  }
  return out;
}

std::set<std::string> DelaySessions::Senders() {
  std::set<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (!e.creating) out.insert(e.s.sender);
  }
  return out;
}

std::vector<std::string> DelaySessions::Ids() {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (!e.creating) out.push_back(id);
  }
  return out;
}

std::vector<DelaySession> DelaySessions::Probes() {
  std::vector<DelaySession> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (!e.creating && !e.s.steering.empty()) out.push_back(e.s);
  }
  return out;
}

std::vector<std::string> DelaySessions::OnSlice(const std::string& slice_id) {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (e.s.slice_id == slice_id) out.push_back(e.creating ? "a delay session being created" : id);
  }
  return out;
}

std::optional<Error> DelaySessions::CheckSliceChange(const Slice& next) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (e.s.slice_id != next.id) continue;
    for (const auto& d : {e.s.sender, e.s.reflector}) {
      if (std::none_of(next.sites.begin(), next.sites.end(), [&](const auto& x) { return x.device == d; })) {
        return ApiError(kConflict, "sites", (e.creating ? "a delay session being created" : "delay session " + id) +
                                                " measures " + d + "; delete it first");
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> DelaySessions::UserOf(const std::string& device_id) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (e.s.sender == device_id || e.s.reflector == device_id) return e.creating ? "a delay session being created" : "delay session " + id;
  }
  return std::nullopt;
}

void DelaySessions::AddUsage(const std::string& tenant, SessionUsage* u) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    u->tenant += e.s.tenant_id == tenant;
    ++u->per_device[e.s.sender];
    ++u->per_device[e.s.reflector];
  }
}

}  // namespace segwan::controller
