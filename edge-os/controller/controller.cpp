#include "edge-os/controller/controller.h"

#include <algorithm>

#include "segwan/clock.h"
#include "segwan/text.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace pb = segwan::v1;

namespace {

// An alert as a tenant's webhook gets it: raised on a violation (critical when no candidate
// complies), cleared when the path complies again.
nlohmann::json AlertJson(const SteeringEvent& e) {
  const bool cleared = e.kind == "clear";
  return {{"alert", "sla_violation"},
          {"state", cleared ? "cleared" : "raised"},
          {"severity", cleared ? "info" : e.kind == "no_compliant" ? "critical" : "warning"},
          {"event", e.kind},
          {"time", IsoTime(e.time_ms)},
          {"tenant", e.tenant_id},
          {"slice", e.slice_id},
          {"policy", e.policy_id},
          {"from", e.from},
          {"to", e.to},
          {"path", e.path},
          {"measured", e.measured},  // the window that decided it
          {"limits", e.limits}};     // a limit not set is null
}

}  // namespace

Controller::Controller(Store* store, EdgeConnector* edges, ControllerOptions options)
    : store_(store),
      o_(std::move(options)),
      tai_offset_s_(TaiUtcOffset()),
      ingest_(store, IngestOptions{.aggregate_interval_ms = o_.aggregate_interval_ms,
                                   .tai_offset_s = tai_offset_s_,
                                   .flush_interval = o_.flush_interval}),
      tenants_(store),
      registry_(store, edges,
                RegistryOptions{.device_token = o_.device_token,
                                .auto_enable = o_.auto_enable,
                                .heartbeat = o_.heartbeat,
                                .missed_heartbeats = o_.missed_heartbeats}),
      slices_(store, &registry_, &locks_, o_.max_slices_per_tenant),
      sessions_(store, &registry_, &slices_, &ingest_, &locks_, tai_offset_s_),
      loss_(store, &registry_, &slices_, &locks_, tai_offset_s_),
      webhooks_(store, o_.webhooks),
      steering_(store, &registry_, &slices_, &sessions_,
                SteeringService::Options{.cores = o_.core_sids,
                                         .grace_ms = o_.steering_grace.count(),
                                         .tai_offset_s = tai_offset_s_}),
      reconciler_(&registry_, &slices_, &sessions_, &loss_, &locks_, [this] { Kick(); }) {
  registry_.SetHooks(RegistryHooks{
      .registered = [this](const std::string& id) {
        if (streams_) streams_->Kick(id);  // a fresh result stream for the edge's new life
      },
      .converge = [this](const std::string& id) { reconciler_.Enqueue(id); },
      .users = [this](const std::string& id) { return DeviceUsers(id); },
      .deleted =
          [this](const std::string& id) {
            workers_.Forget(id);  // its thread ends after what it is doing
            ingest_.ForgetEdge(id);
          },
  });
  slices_.SetHooks(SliceHooks{
      .users = [this](const Slice& prev, const Slice* next) { return SliceUsers(prev, next); },
      .steered = [this](const std::string& slice_id) { return steering_.Steered(slice_id); },
  });
  steering_.SetHooks(SteeringService::Hooks{
      .on_edge =
          [this](const std::string& device, std::function<void()> task) {
            // Without threads (tests) the switch is made at once.
            if (!o_.start_threads || !workers_.Post(device, task)) task();
          },
      .converge = [this](const std::string& device) { reconciler_.Enqueue(device); },
      .alert = [this](const SteeringEvent& e) { webhooks_.Send(e.tenant_id, AlertJson(e)); },
  });
  ingest_.SetTap([this](const std::string& id, const std::vector<Sample>& samples) { steering_.Tap(id, samples); });
  auto shares = [this](const std::string& tenant, const std::vector<std::string>& devices) {
    return CheckShares(tenant, devices);
  };
  sessions_.SetQuota(shares);
  loss_.SetQuota(shares);
  loss_.SetWake([this] { Kick(); });
  if (auto st = Load(); !st) load_error_ = st.error();
}

Status Controller::Load() {
  if (auto st = registry_.Load(); !st) return st;
  if (auto st = tenants_.Load(); !st) return st;
  if (auto st = slices_.Load(); !st) return st;
  if (auto st = sessions_.Load(); !st) return st;
  if (auto st = loss_.Load(); !st) return st;
  if (auto st = webhooks_.Load(); !st) return st;
  return steering_.Load();
}

Controller::~Controller() { Stop(); }

void Controller::Start() {
  if (!o_.start_threads) return;
  ingest_.Start();
  webhooks_.Start();
  if (o_.results == ResultMode::kStream) {
    ResultStreams::Hooks hooks{
        .client = [this](const std::string& edge) { return registry_.Reachable(edge) ? registry_.Client(edge) : nullptr; },
        .stored = [this](const std::string& edge) { return ingest_.Stored(edge); },
        .batch = [this](const std::string& edge, const pb::StampResultBatch& b) { ingest_.Streamed(edge, b); },
        .failed = [this](const std::string& edge, const std::string& e) { ingest_.StreamFailed(edge, e); },
    };
    streams_ = std::make_unique<ResultStreams>(std::move(hooks), ResultStreams::Options{});
  }
  threads_.emplace_back([this] { Loop(); });
  threads_.emplace_back([this] {  // steering's windows are judged as soon as they are due
    std::unique_lock lock(thread_mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stop_; })) {
      lock.unlock();
      steering_.Tick(NowUtcMs());
      lock.lock();
    }
  });
}

void Controller::Stop() {
  {
    std::lock_guard lock(thread_mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  if (streams_) streams_->Stop();
  workers_.Stop();  // waits for the calls in flight (each has a deadline)
  webhooks_.Stop();
  ingest_.Stop();   // writes what waits
}

void Controller::Kick() {
  std::lock_guard lock(thread_mu_);
  kick_ = true;
  cv_.notify_all();
}

// One thread keeps time and makes no edge call itself: it watches heartbeats, hands due
// reconciles and polls to the edges' own workers, and prunes the store. Whatever an edge
// does, the heartbeats are checked on time and the other edges are served.
void Controller::Loop() {
  auto next_poll = std::chrono::steady_clock::now();
  auto next_prune = std::chrono::steady_clock::now();
  while (true) {
    {
      // The services' own locks are taken before this one, never under it: they call Kick()
      // while holding them. A kick that comes between the two is in kick_.
      const auto until = std::min({next_poll, reconciler_.Next(), loss_.NextDue()});
      std::unique_lock lock(thread_mu_);
      cv_.wait_until(lock, until, [this] { return stop_ || kick_; });
      if (stop_) return;
      kick_ = false;
    }
    ScheduleReconciles();
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_poll) {
      registry_.CheckHeartbeats();
      SchedulePolls();
      next_poll = now + o_.poll_interval;
    }
    // Loss periods are read when they can be closed, whatever the poll's beat.
    if (auto due = loss_.TakeDue(now); !due.empty()) PostPolls(due);
    if (now >= next_prune) {
      const int64_t cut_ms = NowUtcMs() - o_.retention_ms;
      const auto n = store_->Prune(TaiUtc{tai_offset_s_}.TaiNs(cut_ms), cut_ms);
      if (n && *n) SEGWAN_LOG(kInfo, "store") << "retention: removed " << *n << " rows";
      // A failed prune (logged by the store) is tried again in a minute, not an hour.
      next_prune = now + (n ? std::chrono::minutes(60) : std::chrono::minutes(1));
    }
  }
}

void Controller::ScheduleReconciles() {
  for (const auto& id : reconciler_.Due()) {
    if (!workers_.Post(id, [this, id] { reconciler_.Finish(id, reconciler_.Run(id)); })) reconciler_.Finish(id, false);
  }
}

void Controller::RunQueued() {
  for (const auto& id : reconciler_.Due()) reconciler_.Finish(id, reconciler_.Run(id));
}

// ---- what spans services ------------------------------------------------------------------
Result<SliceView> Controller::CreateSlice(const Principal& p, const SliceRequest& req) {
  auto owner = tenants_.Owner(p, req.tenant);
  if (!owner) return owner.error();
  return slices_.Create(p, *owner, req);
}

Result<SessionView> Controller::CreateSession(const Principal& p, const SessionRequest& req) {
  auto owner = tenants_.Owner(p, req.tenant);
  if (!owner) return owner.error();
  return sessions_.Create(*owner, req);
}

Result<SlaClass> Controller::CreateSla(const Principal& p, const SlaRequest& req) {
  auto owner = tenants_.Owner(p, req.tenant);
  if (!owner) return owner.error();
  return steering_.CreateSla(*owner, req);
}

Result<PolicyView> Controller::CreatePolicy(const Principal& p, const PolicyRequest& req) {
  auto owner = tenants_.Owner(p, req.tenant);
  if (!owner) return owner.error();
  return steering_.CreatePolicy(*owner, req);
}

Result<LossView> Controller::CreateLossSession(const Principal& p, const LossRequest& req) {
  auto owner = tenants_.Owner(p, req.tenant);
  if (!owner) return owner.error();
  return loss_.Create(*owner, req);
}

// Tenants' and devices' shares of the sessions, delay and loss together. The new session is
// already counted (reserved), hence the "more than". 429 names the limit.
std::optional<Error> Controller::CheckShares(const std::string& tenant, const std::vector<std::string>& devices) {
  SessionUsage u;
  sessions_.AddUsage(tenant, &u);
  loss_.AddUsage(tenant, &u);
  if (u.tenant > o_.max_sessions_per_tenant) {
    return ApiError(kTooMany, "", "tenant " + tenant + " has " + std::to_string(u.tenant - 1) +
                                      " delay and loss sessions, the most it may have (--max-sessions-per-tenant)");
  }
  for (const auto& d : devices) {
    if (u.per_device[d] > o_.max_sessions_per_device) {
      return ApiError(kTooMany, "", "device " + d + " takes part in " + std::to_string(u.per_device[d] - 1) +
                                        " sessions, the most it may (--max-sessions-per-device)");
    }
  }
  return std::nullopt;
}

std::optional<Error> Controller::SliceUsers(const Slice& prev, const Slice* next) {
  if (auto e = steering_.CheckSlice(prev, next)) return e;
  if (next) {
    if (auto e = sessions_.CheckSliceChange(*next)) return e;
    return loss_.CheckSliceChange(*next);
  }
  auto users = sessions_.OnSlice(prev.id);
  for (auto& l : loss_.OnSlice(prev.id)) users.push_back(std::move(l));
  if (users.empty()) return std::nullopt;
  std::string list;
  for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
  return ApiError(kConflict, "id", "slice " + prev.id + " has delay or loss sessions (" + list + "); delete them first");
}

std::optional<Error> Controller::DeviceUsers(const std::string& id) {
  if (auto s = slices_.UserOf(id)) return ApiError(kConflict, "id", "slice " + *s + " uses device '" + id + "'; change it first");
  for (auto user : {sessions_.UserOf(id), loss_.UserOf(id)}) {
    if (user) return ApiError(kConflict, "id", *user + " uses device '" + id + "'; delete it first");
  }
  return std::nullopt;
}

// ---- polling ------------------------------------------------------------------------------
void Controller::PollOnce() {
  for (const auto& edge : PolledEdges()) PollEdge(edge);
  (void)ingest_.Flush();  // tests read the store right after
}

// The edges that send delay probes or colour a monitored flow: the ones polled.
std::set<std::string> Controller::PolledEdges() {
  std::set<std::string> out = sessions_.Senders();
  for (auto& e : loss_.Ingresses()) out.insert(e);
  return out;
}

// An interval is closed once its end is this far behind: its samples have arrived (two
// polls, or two stream batches and a flush).
int64_t Controller::CloseGraceMs() const {
  return 2 * (o_.results == ResultMode::kStream ? 1000 : o_.poll_interval.count()) + 500;
}

// Each polled edge gets one poll in flight at most: a slow edge's polls do not pile up.
void Controller::SchedulePolls() {
  std::set<std::string> edges = PolledEdges();
  if (streams_) {
    // Streamed edges need no call of their own: their intervals are closed here, and only
    // the edges with loss sessions (or no stream) get a poll.
    streams_->Want(sessions_.Senders());
    ingest_.CloseDue(sessions_.Ids(), NowUtcMs(), CloseGraceMs());
    const auto loss_edges = loss_.Ingresses();
    std::erase_if(edges, [&](const std::string& e) { return !loss_edges.count(e) && !streams_->Unsupported(e); });
  }
  PostPolls(edges);
}

void Controller::PostPolls(const std::set<std::string>& edges) {
  for (const auto& edge : edges) {
    {
      std::lock_guard lock(poll_mu_);
      if (!polling_.insert(edge).second) continue;  // the previous one is still running
    }
    const bool posted = workers_.Post(edge, [this, edge] {
      PollEdge(edge);
      std::lock_guard lock(poll_mu_);
      polling_.erase(edge);
    });
    if (!posted) {
      std::lock_guard lock(poll_mu_);
      polling_.erase(edge);
    }
  }
}

// One edge's results, fetched with no lock held: a slow edge delays only its own sessions.
// In notification mode the edge's stream brings them; the poll then only closes intervals
// (and reads loss counters), unless the edge's agent has no stream.
void Controller::PollEdge(const std::string& edge) {
  const auto jobs = sessions_.OfSender(edge);
  const bool fetch = !streams_ || streams_->Unsupported(edge);
  std::vector<std::string> ids;
  for (const auto& [id, ssid] : jobs) {
    ids.push_back(id);
    if (!fetch) continue;
    if (!registry_.Reachable(edge)) {
      ingest_.Polled(id, Error{edge + ": not connected", "", kGrpcUnavailable});
      continue;
    }
    ingest_.Polled(id, registry_.Client(edge)->GetStampSessionResults(ssid));
  }
  ingest_.CloseDue(ids, NowUtcMs(), CloseGraceMs());
  loss_.Poll(edge);
}

Metrics Controller::GetMetrics() {
  Metrics m;
  static_cast<IngestMetrics&>(m) = ingest_.Metrics();
  m.poll_errors += loss_.errors();
  m.samples_stored = store_->SamplesStored();
  m.store_errors = store_->Errors();
  if (streams_) {
    for (const auto& e : sessions_.Senders()) m.streams_up += streams_->Up(e) ? 1 : 0;
  }
  m.steering = steering_.Metrics();
  m.webhook_failures = webhooks_.failures();
  m.devices_known = registry_.Known();
  m.devices_connected = registry_.Connected();
  return m;
}

}  // namespace segwan::controller
