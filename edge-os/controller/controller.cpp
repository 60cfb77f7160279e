#include "edge-os/controller/controller.h"

#include <algorithm>
#include <regex>

#include "edge-os/controller/tokens.h"
#include "edge-os/monitoring/loss_periods.h"
#include "edge-os/slices/planner.h"
#include "segwan/clock.h"
#include "segwan/log.h"
#include "segwan/text.h"

namespace segwan::controller {

namespace pb = segwan::v1;

namespace {

std::vector<uint8_t> Unhex(const std::string& h) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

const char* ModeName(pb::SliceMode m) {
  return m == pb::SLICE_MODE_VRF ? "vrf" : m == pb::SLICE_MODE_TABLE ? "table" : "";
}

// Edge errors that say the request itself was wrong (as opposed to the edge being away).
bool Refused(const Error& e) { return e.code != kGrpcUnavailable && e.code != 4 /*DEADLINE*/; }

Error EdgeError(const std::string& field, const Error& e) {
  return ApiError(Refused(e) ? kUnprocessable : kUnavailable, field, e.message);
}

}  // namespace

Controller::Controller(Store* store, EdgeConnector* edges, ControllerOptions options)
    : store_(store),
      edges_(edges),
      o_(std::move(options)),
      tai_offset_s_(TaiUtcOffset()),
      ingest_(store, IngestOptions{.aggregate_interval_ms = o_.aggregate_interval_ms,
                                   .tai_offset_s = tai_offset_s_,
                                   .flush_interval = o_.flush_interval}) {
  if (auto st = Load(); !st) load_error_ = st.error();
}

Status Controller::Load() {
  auto devices = store_->Devices();
  if (!devices) return devices.error();
  for (auto& d : *devices) devices_.emplace(d.id, d);
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  for (const auto& t : *tenants) tenant_by_token_.emplace(t.token_sha256, t.id);
  auto slices = store_->Slices();
  if (!slices) return slices.error();
  for (auto& s : *slices) {
    for (const auto& site : s.sites) slice_edges_[s.id][site.device] = {"pending", ""};
    slices_.emplace(s.id, s);
  }
  auto sessions = store_->Sessions();
  if (!sessions) return sessions.error();
  for (auto& s : *sessions) {
    if (auto st = ingest_.Restore(s); !st) return st;
    sessions_.emplace(s.id, SessionRuntime{s, ""});
  }
  if (auto st = ingest_.RestoreCursors(); !st) return st;
  auto losses = store_->LossSessions();
  if (!losses) return losses.error();
  for (auto& s : *losses) {
    LossRuntime r;
    auto cursor = store_->GetLossCursor(s.id);
    auto last = store_->LastLossPeriod(s.id);
    if (!cursor || !last) return cursor ? last.error() : cursor.error();
    r.cursor = *cursor;
    r.last = *last;
    r.s = s;
    loss_.emplace(s.id, std::move(r));
  }
  return Status::Ok();
}

Controller::~Controller() { Stop(); }

void Controller::Start() {
  if (!o_.start_threads) return;
  ingest_.Start();
  if (o_.results == ResultMode::kStream) {
    ResultStreams::Hooks hooks{
        .client = [this](const std::string& edge) { return Reachable(edge) ? ClientFor(edge) : nullptr; },
        .stored = [this](const std::string& edge) { return ingest_.Stored(edge); },
        .batch = [this](const std::string& edge, const pb::StampResultBatch& b) { ingest_.Streamed(edge, b); },
        .failed = [this](const std::string& edge, const std::string& e) { ingest_.StreamFailed(edge, e); },
    };
    streams_ = std::make_unique<ResultStreams>(std::move(hooks), ResultStreams::Options{});
  }
  threads_.emplace_back([this] { Loop(); });
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
  ingest_.Stop();   // writes what waits
}

// One thread keeps time and makes no edge call itself: it watches heartbeats, hands due
// reconciles and polls to the edges' own workers, and prunes the store. Whatever an edge
// does, the heartbeats are checked on time and the other edges are served.
void Controller::Loop() {
  auto next_poll = std::chrono::steady_clock::now();
  auto next_prune = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock lock(thread_mu_);
      cv_.wait_until(lock, std::min(next_poll, NextReconcile()), [this] { return stop_ || reconcile_kick_; });
      if (stop_) return;
      reconcile_kick_ = false;
    }
    ScheduleReconciles();
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_poll) {
      CheckHeartbeats();
      SchedulePolls();
      next_poll = now + o_.poll_interval;
    }
    if (now >= next_prune) {
      const int64_t cut_ms = NowUtcMs() - o_.retention_ms;
      const auto n = store_->Prune(TaiUtc{tai_offset_s_}.TaiNs(cut_ms),
                                   cut_ms);
      if (n && *n) SEGWAN_LOG(kInfo, "store") << "retention: removed " << *n << " rows";
      // A failed prune (logged by the store) is tried again in a minute, not an hour.
      next_prune = now + (n ? std::chrono::minutes(60) : std::chrono::minutes(1));
    }
  }
}

// Each polled edge gets one poll in flight at most: a slow edge's polls do not pile up.
void Controller::SchedulePolls() {
  std::set<std::string> edges = PolledEdges();
  if (streams_) {
    // Streamed edges need no call of their own: their intervals are closed here, and only
    // the edges with loss sessions (or no stream) get a poll.
    streams_->Want(StreamedEdges());
    std::vector<std::string> ids;
    std::set<std::string> loss_edges;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, r] : sessions_) ids.push_back(id);
      for (const auto& [id, r] : loss_) loss_edges.insert(r.s.from);
    }
    ingest_.CloseDue(ids, NowUtcMs(), CloseGraceMs());
    std::erase_if(edges, [&](const std::string& e) { return !loss_edges.count(e) && !streams_->Unsupported(e); });
  }
  for (const auto& edge : edges) {
    {
      std::lock_guard lock(mu_);
      if (!polling_.insert(edge).second) continue;  // the previous one is still running
    }
    const bool posted = workers_.Post(edge, [this, edge] {
      PollEdge(edge);
      std::lock_guard lock(mu_);
      polling_.erase(edge);
    });
    if (!posted) {
      std::lock_guard lock(mu_);
      polling_.erase(edge);
    }
  }
}

std::chrono::steady_clock::time_point Controller::NextReconcile() {
  std::lock_guard lock(mu_);
  auto next = std::chrono::steady_clock::time_point::max();
  for (const auto& [id, r] : reconcile_) {
    if (!r.running) next = std::min(next, r.next_at);
  }
  return next;
}

std::vector<std::string> Controller::DueReconciles() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> due;
  std::lock_guard lock(mu_);
  for (auto& [id, r] : reconcile_) {
    if (!r.running && r.next_at <= now) {
      r.running = true;
      due.push_back(id);
    }
  }
  return due;
}

// A reconcile that could not finish (the edge went away, a call timed out) is tried again
// with backoff, 0.5 s doubling to 30 s, until it does; one that finished is forgotten.
void Controller::FinishReconcile(const std::string& device_id, bool done) {
  {
    std::lock_guard lock(mu_);
    auto it = reconcile_.find(device_id);
    if (it == reconcile_.end()) return;
    it->second.running = false;
    if (done && !it->second.again) {
      reconcile_.erase(it);
      return;
    }
    if (it->second.again) {  // asked for again while it ran: at once
      it->second.again = false;
      it->second.next_at = std::chrono::steady_clock::now();
    } else {
      it->second.next_at = std::chrono::steady_clock::now() + it->second.backoff;
      it->second.backoff = std::min(it->second.backoff * 2, std::chrono::milliseconds(30'000));
    }
  }
  std::lock_guard lock(thread_mu_);
  reconcile_kick_ = true;
  cv_.notify_all();
}

void Controller::ScheduleReconciles() {
  for (const auto& id : DueReconciles()) {
    if (!workers_.Post(id, [this, id] { FinishReconcile(id, Reconcile(id)); })) FinishReconcile(id, false);
  }
}

// ---- authentication and tenants --------------------------------------------------------
std::optional<Principal> Controller::Authenticate(const std::string& token) {
  if (token.empty()) return std::nullopt;
  if (!operator_token_.empty() && SameSecret(token, operator_token_)) return Principal{true, ""};
  std::lock_guard lock(mu_);
  auto it = tenant_by_token_.find(Sha256Hex(token));  // tenants are only ever added
  if (it != tenant_by_token_.end()) return Principal{false, it->second};
  return std::nullopt;
}

Result<std::pair<Tenant, std::string>> Controller::CreateTenant(const Principal& p, const std::string& name) {
  if (!p.is_operator) return ApiError(kForbidden, "", "only the operator creates tenants");
  if (name.empty() || Utf8Length(name) > 64) return ApiError(kBadRequest, "name", "must be 1 to 64 characters");
  std::lock_guard cfg(config_mu_);
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  for (const auto& t : *tenants) {
    if (t.name == name) return ApiError(kConflict, "name", "a tenant named '" + name + "' exists");
  }
  auto number = store_->NextId("tenant");
  if (!number) return number.error();
  Tenant t;
  t.id = "t" + std::to_string(*number);
  t.name = name;
  const std::string token = RandomHex(24);
  t.token_sha256 = Sha256Hex(token);
  t.created_ms = NowUtcMs();
  if (auto st = store_->PutTenant(t); !st) return st.error();
  {
    std::lock_guard lock(mu_);
    tenant_by_token_.emplace(t.token_sha256, t.id);
  }
  SEGWAN_LOG(kInfo, "tenants") << "tenant " << t.id << " (" << name << ") created";
  return std::make_pair(t, token);
}

Result<std::vector<Tenant>> Controller::ListTenants(const Principal& p) {
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  std::vector<Tenant> out;
  for (auto& t : *tenants) {
    if (Visible(p, t.id)) out.push_back(std::move(t));
  }
  return out;
}

Result<Tenant> Controller::Owner(const Principal& p, const std::string& tenant_field) {
  if (!p.is_operator) {
    if (!tenant_field.empty() && tenant_field != p.tenant_id) {
      return ApiError(kBadRequest, "tenant", "a tenant creates objects only for itself");
    }
    return Tenant{p.tenant_id, "", "", 0};
  }
  if (tenant_field.empty()) return ApiError(kBadRequest, "tenant", "the operator must say on whose behalf");
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  for (auto& t : *tenants) {
    if (t.id == tenant_field) return t;
  }
  return ApiError(kBadRequest, "tenant", "no tenant '" + tenant_field + "'");
}

// Tenants' and devices' shares of the controller (locked: mu_). 429 names the limit.
std::optional<Error> Controller::OverQuota(const std::string& tenant, const std::vector<std::string>& devices,
                                           bool slice) const {
  if (slice) {
    const auto n = std::count_if(slices_.begin(), slices_.end(), [&](const auto& x) { return x.second.tenant_id == tenant; });
    if (static_cast<size_t>(n) >= o_.max_slices_per_tenant) {
      return ApiError(kTooMany, "", "tenant " + tenant + " has " + std::to_string(n) + " slices, the most it may have (--max-slices-per-tenant)");
    }
    return std::nullopt;
  }
  size_t mine = 0;
  std::map<std::string, size_t> per_device;
  for (const auto& [id, r] : sessions_) {
    mine += r.s.tenant_id == tenant;
    ++per_device[r.s.sender];
    ++per_device[r.s.reflector];
  }
  for (const auto& [id, r] : loss_) {
    mine += r.s.tenant_id == tenant;
    ++per_device[r.s.from];
    ++per_device[r.s.to];
  }
  if (mine >= o_.max_sessions_per_tenant) {
    return ApiError(kTooMany, "", "tenant " + tenant + " has " + std::to_string(mine) +
                                      " delay and loss sessions, the most it may have (--max-sessions-per-tenant)");
  }
  for (const auto& d : devices) {
    if (per_device[d] >= o_.max_sessions_per_device) {
      return ApiError(kTooMany, "", "device " + d + " takes part in " + std::to_string(per_device[d]) +
                                        " sessions, the most it may (--max-sessions-per-device)");
    }
  }
  return std::nullopt;
}

// ---- devices -----------------------------------------------------------------------------
Result<pb::RegisterDeviceResponse> Controller::Register(const pb::RegisterDeviceRequest& req,
                                                        const std::string& peer, bool authenticated) {
  if (!authenticated && (o_.device_token.empty() || !SameSecret(req.token(), o_.device_token))) {
    SEGWAN_LOG(kWarn, "registration") << "refused device '" << req.device_id() << "' from " << peer
                                      << ": unknown token";
    return ApiError(kUnauthenticated, "token", "unknown registration token");
  }
  if (!IsValidIdentifier(req.device_id())) {
    return ApiError(kBadRequest, "device_id", "must match [a-z0-9][a-z0-9-]{0,62}");
  }
  if (!ParseHostPort(req.grpc_address())) {
    return ApiError(kBadRequest, "grpc_address", "'" + req.grpc_address() + "' is not host:port");
  }
  // What one registration may carry: enough for a big router, not enough to hurt the store.
  if (req.interfaces_size() > kMaxDeviceInterfaces) {
    return ApiError(kBadRequest, "interfaces", "at most " + std::to_string(kMaxDeviceInterfaces) + " interfaces");
  }
  for (int k = 0; k < req.interfaces_size(); ++k) {
    const auto& i = req.interfaces(k);
    const std::string f = "interfaces[" + std::to_string(k) + "]";
    if (i.name().empty() || i.name().size() > 15) return ApiError(kBadRequest, f + ".name", "must be 1 to 15 characters");
    if (i.addresses_size() > kMaxInterfaceAddresses) {
      return ApiError(kBadRequest, f + ".addresses", "at most " + std::to_string(kMaxInterfaceAddresses) + " addresses");
    }
    for (int a = 0; a < i.addresses_size(); ++a) {
      if (!ParsePrefix(i.addresses(a), true)) {
        return ApiError(kBadRequest, f + ".addresses[" + std::to_string(a) + "]", "not addr/len");
      }
    }
    if (i.role().size() > 8) return ApiError(kBadRequest, f + ".role", "must be wan, lan, mgmt or empty");
  }
  if (req.capabilities_size() > 32) return ApiError(kBadRequest, "capabilities", "at most 32");
  for (const auto& c : req.capabilities()) {
    if (c.size() > 32) return ApiError(kBadRequest, "capabilities", "each at most 32 characters");
  }
  if (req.version().size() > 64) return ApiError(kBadRequest, "version", "at most 64 characters");
  if (!req.locator().empty()) {
    auto loc = ParsePrefix(req.locator());
    if (!loc || loc->address.family != AF_INET6) {
      return ApiError(kBadRequest, "locator", "'" + req.locator() + "' is not an IPv6 prefix");
    }
  }
  Device d;
  d.id = req.device_id();
  d.grpc_address = req.grpc_address();
  d.capabilities.assign(req.capabilities().begin(), req.capabilities().end());
  d.slice_mode = ModeName(req.slice_mode());
  d.locator = req.locator();
  d.version = req.version();
  d.registered_ms = NowUtcMs();
  for (const auto& i : req.interfaces()) {
    d.interfaces.push_back({i.name(), {i.addresses().begin(), i.addresses().end()}, i.role(), i.up()});
  }
  pb::RegisterDeviceResponse out;
  bool enabled;
  {
    std::lock_guard lock(mu_);
    auto it = devices_.find(d.id);
    d.enabled = it != devices_.end() ? it->second.enabled : o_.auto_enable;
  }
  enabled = d.enabled;
  // Stored first: a registration the store cannot keep is refused (UNAVAILABLE) and retried
  // by the edge, rather than half taken.
  if (auto st = store_->PutDevice(d); !st) return st.error();
  edges_->Reset(d.id);  // a fresh channel for the edge's new life
  {
    std::lock_guard lock(mu_);
    devices_[d.id] = d;
    auto& rt = runtime_[d.id];
    rt.connected = true;
    rt.session_id = RandomHex(8);
    rt.last_heartbeat = std::chrono::steady_clock::now();
    rt.last_seen_ms = NowUtcMs();
    out.set_session_id(rt.session_id);
  }
  if (streams_) streams_->Kick(d.id);  // and a fresh result stream
  out.set_enabled(enabled);
  out.set_heartbeat_interval_ms(static_cast<uint32_t>(o_.heartbeat.count()));
  SEGWAN_LOG(kInfo, "registration") << "device " << d.id << " registered from " << peer << " ("
                                    << (enabled ? "enabled" : "disabled until an operator enables it")
                                    << ", " << d.grpc_address << ")";
  if (enabled) Enqueue(d.id);
  return out;
}

bool Controller::Heartbeat(const std::string& device_id, const std::string& session_id) {
  std::lock_guard lock(mu_);
  auto it = runtime_.find(device_id);
  if (it == runtime_.end() || it->second.session_id != session_id || session_id.empty()) return false;
  if (!it->second.connected) SEGWAN_LOG(kInfo, "registration") << "device " << device_id << " is back";
  it->second.connected = true;
  it->second.last_heartbeat = std::chrono::steady_clock::now();
  it->second.last_seen_ms = NowUtcMs();
  return true;
}

void Controller::Unregister(const std::string& device_id, const std::string& session_id) {
  std::lock_guard lock(mu_);
  auto it = runtime_.find(device_id);
  if (it == runtime_.end() || it->second.session_id != session_id) return;
  it->second.connected = false;
  it->second.session_id.clear();
  SEGWAN_LOG(kInfo, "registration") << "device " << device_id << " unregistered";
}

void Controller::Disconnect(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = runtime_.find(id);
  if (it == runtime_.end()) return;
  it->second.connected = false;
  it->second.session_id.clear();
}

Status Controller::DeleteDevice(const Principal& p, const std::string& id) {
  if (!p.is_operator) return ApiError(kForbidden, "", "only the operator deletes devices");
  std::lock_guard cfg(config_mu_);
  {
    std::lock_guard lock(mu_);
    if (!devices_.count(id)) return ApiError(kNotFound, "id", "no device '" + id + "'");
    for (const auto& [sid, s] : slices_) {
      for (const auto& site : s.sites) {
        if (site.device == id) return ApiError(kConflict, "id", "slice " + sid + " uses device '" + id + "'; change it first");
      }
    }
    for (const auto& [sid, r] : sessions_) {
      if (r.s.sender == id || r.s.reflector == id) {
        return ApiError(kConflict, "id", "delay session " + sid + " uses device '" + id + "'; delete it first");
      }
    }
    for (const auto& [lid, l] : loss_) {
      if (l.s.from == id || l.s.to == id) {
        return ApiError(kConflict, "id", "loss session " + lid + " uses device '" + id + "'; delete it first");
      }
    }
    if (auto st = store_->DeleteDevice(id); !st) return st.error();
    devices_.erase(id);
    runtime_.erase(id);
  }
  workers_.Forget(id);  // its thread ends after what it is doing
  SEGWAN_LOG(kInfo, "registration") << "device " << id << " deleted";
  return Status::Ok();
}

void Controller::CheckHeartbeats() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  for (auto& [id, rt] : runtime_) {
    if (rt.connected && now - rt.last_heartbeat > o_.heartbeat * o_.missed_heartbeats) {
      rt.connected = false;
      SEGWAN_LOG(kWarn, "registration") << "device " << id << " missed " << o_.missed_heartbeats
                                        << " heartbeats: disconnected";
    }
  }
}

std::vector<DeviceView> Controller::Devices() {
  std::lock_guard lock(mu_);
  std::vector<DeviceView> out;
  for (const auto& [id, d] : devices_) {
    auto rt = runtime_.find(id);
    out.push_back({d, rt != runtime_.end() && rt->second.connected,
                   rt != runtime_.end() ? rt->second.last_seen_ms : 0});
  }
  return out;
}

Result<DeviceView> Controller::GetDevice(const std::string& id) {
  for (auto& v : Devices()) {
    if (v.device.id == id) return v;
  }
  return ApiError(kNotFound, "id", "no device '" + id + "'");
}

Result<DeviceView> Controller::SetEnabled(const Principal& p, const std::string& id, bool enabled) {
  if (!p.is_operator) return ApiError(kForbidden, "", "only the operator enables and disables devices");
  Device d;
  {
    std::lock_guard lock(mu_);
    auto it = devices_.find(id);
    if (it == devices_.end()) return ApiError(kNotFound, "id", "no device '" + id + "'");
    d = it->second;
  }
  d.enabled = enabled;
  if (auto st = store_->PutDevice(d); !st) return st.error();
  {
    std::lock_guard lock(mu_);
    if (auto it = devices_.find(id); it != devices_.end()) it->second.enabled = enabled;
  }
  SEGWAN_LOG(kInfo, "devices") << "device " << id << (enabled ? " enabled" : " disabled");
  if (enabled) Enqueue(id);
  return GetDevice(id);
}

bool Controller::Reachable(const std::string& device_id) {
  std::lock_guard lock(mu_);
  auto d = devices_.find(device_id);
  auto rt = runtime_.find(device_id);
  return d != devices_.end() && d->second.enabled && rt != runtime_.end() && rt->second.connected;
}

std::shared_ptr<EdgeClient> Controller::ClientFor(const std::string& device_id) {
  std::string address;
  {
    std::lock_guard lock(mu_);
    auto d = devices_.find(device_id);
    if (d == devices_.end()) return nullptr;
    address = d->second.grpc_address;
  }
  return edges_->Connect(device_id, address);
}

std::map<std::string, Device> Controller::DevicesOf(const Slice& s) {
  std::map<std::string, Device> out;
  for (const auto& site : s.sites) {
    auto it = devices_.find(site.device);
    if (it != devices_.end()) out.emplace(site.device, it->second);
  }
  return out;
}

void Controller::Enqueue(const std::string& device_id) {
  {
    std::lock_guard lock(mu_);
    auto& r = reconcile_[device_id];
    if (r.running) r.again = true;
    r.next_at = std::chrono::steady_clock::now();
    r.backoff = std::chrono::milliseconds(500);
  }
  std::lock_guard lock(thread_mu_);
  reconcile_kick_ = true;
  cv_.notify_all();
}

void Controller::RunQueued() {
  for (const auto& id : DueReconciles()) FinishReconcile(id, Reconcile(id));
}

// ---- slices ------------------------------------------------------------------------------
SliceView Controller::ViewOf(const Slice& s) {
  SliceView v{s, {}};
  auto it = slice_edges_.find(s.id);
  if (it != slice_edges_.end()) v.edges = it->second;
  return v;
}

Result<std::map<std::string, Device>> Controller::CheckSites(const Principal& p, const Slice& s) {
  std::lock_guard lock(mu_);
  for (size_t k = 0; k < s.sites.size(); ++k) {
    const auto& site = s.sites[k];
    const std::string f = "sites[" + std::to_string(k) + "]";
    auto d = devices_.find(site.device);
    if (d == devices_.end()) return ApiError(kBadRequest, f + ".device", "no device '" + site.device + "'");
    if (!d->second.enabled) return ApiError(kConflict, f + ".device", "device '" + site.device + "' is disabled");
    for (const auto& [id, other] : slices_) {
      if (id == s.id) continue;
      for (const auto& os : other.sites) {
        if (os.device == site.device && os.interface == site.interface) {
          // Only the owner may learn which slice holds it.
          return ApiError(kConflict, f + ".interface",
                          "'" + site.interface + "' of " + site.device + " is already in " +
                              (Visible(p, other.tenant_id) ? "slice " + id : "another tenant's slice"));
        }
      }
    }
  }
  return DevicesOf(s);
}

// Applies `next` on its edges and removes the slice from the edges of `prev` it no longer
// has. When an edge refuses, every edge already touched goes back to `prev` (or loses the
// slice if `prev` did not have it), so a refused request changes nothing.
Result<std::map<std::string, EdgeState>> Controller::PushSlice(
    const Slice& next, const std::map<std::string, segwan::v1::Slice>& plan, const Slice* prev,
    const std::map<std::string, Device>& devices) {
  std::map<std::string, segwan::v1::Slice> old_plan;
  if (prev) {
    if (auto o = PlanSlice(*prev, devices)) old_plan = *o;
  }
  std::map<std::string, EdgeState> states;
  std::vector<std::string> applied;
  for (const auto& [device, msg] : plan) {
    if (!Reachable(device)) {
      states[device] = {"pending", "not connected; applied when it registers"};
      continue;
    }
    auto r = [&] {
      auto edge_lock = LockEdge(device);
      return ClientFor(device)->ApplySlice(msg);
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
      auto edge_lock = LockEdge(a);
      auto old = old_plan.find(a);
      if (old != old_plan.end()) ClientFor(a)->ApplySlice(old->second);
      else ClientFor(a)->RemoveSlice(next.id);
    }
    size_t k = 0;
    while (k < next.sites.size() && next.sites[k].device != device) ++k;
    return ApiError(kUnprocessable, "sites[" + std::to_string(k) + "]", r.error().message);
  }
  for (const auto& [device, msg] : old_plan) {
    if (plan.count(device) || !Reachable(device)) continue;  // an absent edge is cleaned up by Reconcile
    auto edge_lock = LockEdge(device);
    if (auto st = ClientFor(device)->RemoveSlice(next.id); !st) {
      SEGWAN_LOG(kWarn, "slices") << "removing " << next.id << ": " << st.error().message << " (left to reconciliation)";
    }
  }
  return states;
}

Result<SliceView> Controller::CreateSlice(const Principal& p, const SliceRequest& req) {
  auto owner = Owner(p, req.tenant);
  if (!owner) return owner.error();
  if (req.name.empty() || Utf8Length(req.name) > 64) return ApiError(kBadRequest, "name", "must be 1 to 64 characters");
  if (req.sites.size() < 2) return ApiError(kBadRequest, "sites", "a slice joins at least two sites");
  std::lock_guard cfg(config_mu_);
  {
    std::lock_guard lock(mu_);
    if (auto e = OverQuota(owner->id, {}, true)) return *e;
  }
  Slice s;
  s.tenant_id = owner->id;
  s.name = req.name;
  s.sites = req.sites;
  s.paths = req.paths;
  auto devices = CheckSites(p, s);
  if (!devices) return devices.error();
  // Plan with a provisional number to validate everything before anything is allocated.
  s.number = 1;
  if (auto plan = PlanSlice(s, *devices); !plan) return ApiError(kBadRequest, plan.error().field, plan.error().message);
  const auto next = store_->NextId("slice-number");
  if (!next) return next.error();
  const uint64_t number = *next;
  if (number > kMaxSliceNumber) return ApiError(kConflict, "", "no slice numbers left");
  s.number = static_cast<uint32_t>(number);
  s.id = "sl" + std::to_string(number);
  s.created_ms = NowUtcMs();
  auto plan = PlanSlice(s, *devices);
  if (!plan) return ApiError(kBadRequest, plan.error().field, plan.error().message);
  InflightSlice inflight(this, s.id);  // reconciles leave it to this call meanwhile
  auto states = PushSlice(s, *plan, nullptr, *devices);
  if (!states) return states.error();
  if (auto st = store_->PutSlice(s); !st) {
    // Not kept: the edges that took it lose it again, and the request changed nothing.
    for (const auto& [d, e] : *states) {
      if (e.state == "applied") ClientFor(d)->RemoveSlice(s.id);
    }
    return st.error();
  }
  std::lock_guard lock(mu_);
  slices_[s.id] = s;
  slice_edges_[s.id] = *states;
  SEGWAN_LOG(kInfo, "slices") << "slice " << s.id << " (" << s.name << ") of " << s.tenant_id << " created on "
                              << plan->size() << " edges";
  return ViewOf(s);
}

Result<SliceView> Controller::UpdateSlice(const Principal& p, const std::string& id, const SliceRequest& req) {
  if (req.name.empty() || Utf8Length(req.name) > 64) return ApiError(kBadRequest, "name", "must be 1 to 64 characters");
  if (req.sites.size() < 2) return ApiError(kBadRequest, "sites", "a slice joins at least two sites");
  std::lock_guard cfg(config_mu_);
  Slice prev;
  {
    std::lock_guard lock(mu_);
    auto it = slices_.find(id);
    if (it == slices_.end() || !Visible(p, it->second.tenant_id)) return ApiError(kNotFound, "id", "no slice '" + id + "'");
    prev = it->second;
    if (!req.tenant.empty() && req.tenant != prev.tenant_id) return ApiError(kBadRequest, "tenant", "a slice keeps its tenant");
    // A delay session needs both its devices in the slice.
    for (const auto& [sid, r] : sessions_) {
      if (r.s.slice_id != id) continue;
      for (const auto& d : {r.s.sender, r.s.reflector}) {
        if (std::none_of(req.sites.begin(), req.sites.end(), [&](const auto& x) { return x.device == d; })) {
          return ApiError(kConflict, "sites", "delay session " + sid + " measures " + d + "; delete it first");
        }
      }
    }
  }
  Slice s = prev;
  s.name = req.name;
  s.sites = req.sites;
  s.paths = req.paths;
  auto devices = CheckSites(p, s);
  if (!devices) return devices.error();
  {
    std::lock_guard lock(mu_);
    for (const auto& site : prev.sites) {  // to plan the old state for rollback and removal
      if (auto d = devices_.find(site.device); d != devices_.end()) devices->emplace(site.device, d->second);
    }
  }
  auto plan = PlanSlice(s, *devices);
  if (!plan) return ApiError(kBadRequest, plan.error().field, plan.error().message);
  {
    // A monitored flow keeps its SID list: its counters are keyed by it on both edges.
    std::lock_guard lock(mu_);
    for (const auto& [lid, r] : loss_) {
      if (r.s.slice_id != id) continue;
      auto segs = FlowSegments(s, r.s.from, r.s.to, r.s.family);
      if (!segs || *segs != r.s.segments) {
        return ApiError(kConflict, "sites", "loss session " + lid + " monitors the flow " + r.s.from + " -> " +
                                                r.s.to + ", which this change would alter; delete it first");
      }
    }
  }
  InflightSlice inflight(this, s.id);  // reconciles leave it to this call meanwhile
  auto states = PushSlice(s, *plan, &prev, *devices);
  if (!states) return states.error();
  if (auto st = store_->PutSlice(s); !st) {
    // Not kept: the edges go back to the stored version.
    if (auto old = PlanSlice(prev, *devices)) PushSlice(prev, *old, &s, *devices);
    return st.error();
  }
  std::lock_guard lock(mu_);
  slices_[s.id] = s;
  slice_edges_[s.id] = *states;
  SEGWAN_LOG(kInfo, "slices") << "slice " << s.id << " updated: " << plan->size() << " edges";
  return ViewOf(s);
}

std::vector<SliceView> Controller::Slices(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<SliceView> out;
  for (const auto& [id, s] : slices_) {
    if (Visible(p, s.tenant_id)) out.push_back(ViewOf(s));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.slice.number < b.slice.number; });
  return out;
}

Result<SliceView> Controller::GetSlice(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = slices_.find(id);
  if (it == slices_.end() || !Visible(p, it->second.tenant_id)) return ApiError(kNotFound, "id", "no slice '" + id + "'");
  return ViewOf(it->second);
}

Status Controller::DeleteSlice(const Principal& p, const std::string& id) {
  std::lock_guard cfg(config_mu_);
  Slice s;
  {
    std::lock_guard lock(mu_);
    auto it = slices_.find(id);
    if (it == slices_.end() || !Visible(p, it->second.tenant_id)) return ApiError(kNotFound, "id", "no slice '" + id + "'");
    std::string users;
    for (const auto& [sid, r] : sessions_) {
      if (r.s.slice_id == id) users += (users.empty() ? "" : ", ") + sid;
    }
    for (const auto& [lid, r] : loss_) {
      if (r.s.slice_id == id) users += (users.empty() ? "" : ", ") + lid;
    }
    if (!users.empty()) {
      return ApiError(kConflict, "id", "slice " + id + " has delay or loss sessions (" + users + "); delete them first");
    }
    s = it->second;
  }
  // Forgotten first: a store that cannot forget it leaves everything as it was, and a
  // reconcile that starts now no longer puts it back.
  if (auto st = store_->DeleteSlice(id); !st) return st.error();
  {
    std::lock_guard lock(mu_);
    slices_.erase(id);
    slice_edges_.erase(id);
  }
  std::set<std::string> devices;
  for (const auto& site : s.sites) devices.insert(site.device);
  for (const auto& d : devices) {
    // An edge that is away is cleaned up when it registers again (Reconcile removes slices
    // the controller no longer has).
    if (!Reachable(d)) continue;
    auto edge_lock = LockEdge(d);
    if (auto st = ClientFor(d)->RemoveSlice(s.id); !st) {
      SEGWAN_LOG(kWarn, "slices") << "removing " << s.id << ": " << st.error().message << " (left to reconciliation)";
    }
  }
  SEGWAN_LOG(kInfo, "slices") << "slice " << id << " deleted";
  return Status::Ok();
}

// ---- delay sessions ----------------------------------------------------------------------
SessionView Controller::ViewOf(const SessionRuntime& r) const {
  auto v = ingest_.Get(r.s.id);
  if (!v) return {r.s, {}, r.error};
  return {r.s, v->counters, !r.error.empty() ? r.error : v->error};
}

pb::StampSessionParams Controller::SessionParams(const DelaySession& s, bool sender_side) {
  pb::StampSessionParams p;
  Slice slice;
  Device sender, reflector;
  {
    std::lock_guard lock(mu_);
    slice = slices_.at(s.slice_id);
    sender = devices_.at(s.sender);
    reflector = devices_.at(s.reflector);
  }
  const auto a = StampAddress(sender), b = StampAddress(reflector);
  p.set_ssid(s.ssid);
  p.set_source_address(sender_side ? a->ToString() : b->ToString());
  p.set_peer_address(sender_side ? b->ToString() : a->ToString());
  for (const auto& w : sender_side ? PathWaypoints(slice, s.sender, s.reflector)
                                   : PathWaypoints(slice, s.reflector, s.sender)) {
    p.add_segments(w);
  }
  if (sender_side) p.set_interval_ms(s.interval_ms);
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

// Puts one side of a session on its edge: Init, Create, Start when running. When
// reconciling, a session the edge already has is fine; one it had lost is created again and
// its sequence numbers restart, so the counters carry on from where they were.
Status Controller::PushSession(const DelaySession& s, bool sender_side, bool reconciling) {
  const std::string& device = sender_side ? s.sender : s.reflector;
  const auto role = sender_side ? pb::STAMP_ROLE_SENDER : pb::STAMP_ROLE_REFLECTOR;
  auto client = ClientFor(device);
  const auto params = SessionParams(s, sender_side);
  if (auto st = client->Init(role, params.source_address()); !st) return st;
  auto st = client->CreateStampSession(role, params);
  if (!st && !(reconciling && st.error().code == kGrpcAlreadyExists)) return st;
  if (st && reconciling) ingest_.Restarted(s.id, sender_side);  // the edge counts from 0 again
  if (s.running) {
    if (auto r = client->StartStampSession(role, s.ssid); !r) return r;
  }
  return Status::Ok();
}

Result<SessionView> Controller::CreateSession(const Principal& p, const SessionRequest& req) {
  auto owner = Owner(p, req.tenant);
  if (!owner) return owner.error();
  if (req.interval_ms < 10 || req.interval_ms > 60000) return ApiError(kBadRequest, "interval_ms", "must be 10 to 60000");
  if (req.engine == EngineChoice::kEbpf && req.authenticated) {
    return ApiError(kBadRequest, "engine", "the eBPF engine takes unauthenticated sessions only (the HMAC covers the timestamps)");
  }
  std::lock_guard cfg(config_mu_);
  DelaySession s;
  {
    std::lock_guard lock(mu_);
    if (auto e = OverQuota(owner->id, {req.sender, req.reflector}, false)) return *e;
    auto sl = slices_.find(req.slice);
    if (sl == slices_.end() || sl->second.tenant_id != owner->id) {
      return ApiError(kNotFound, "slice", "no slice '" + req.slice + "'");
    }
    auto in_slice = [&](const std::string& d) {
      return std::any_of(sl->second.sites.begin(), sl->second.sites.end(), [&](const auto& x) { return x.device == d; });
    };
    if (!in_slice(req.sender)) return ApiError(kBadRequest, "sender", "'" + req.sender + "' is not a device of slice " + req.slice);
    if (!in_slice(req.reflector)) return ApiError(kBadRequest, "reflector", "'" + req.reflector + "' is not a device of slice " + req.slice);
    if (req.sender == req.reflector) return ApiError(kBadRequest, "reflector", "must differ from the sender");
    for (const auto* f : {"sender", "reflector"}) {
      const auto& id = std::string(f) == "sender" ? req.sender : req.reflector;
      if (!StampAddress(devices_.at(id))) {
        return ApiError(kUnprocessable, f, "device '" + id + "' has no address inside its locator to run STAMP from");
      }
    }
  }
  for (const auto* f : {"sender", "reflector"}) {
    const auto& id = std::string(f) == "sender" ? req.sender : req.reflector;
    if (!Reachable(id)) return ApiError(kConflict, f, "device '" + id + "' is not connected or not enabled");
  }
  const auto next_ssid = store_->NextId("ssid");
  if (!next_ssid) return next_ssid.error();
  const uint64_t ssid = *next_ssid;
  if (ssid > 65535) return ApiError(kConflict, "", "no STAMP session ids left");
  s.id = "ds" + std::to_string(ssid);
  s.tenant_id = owner->id;
  s.slice_id = req.slice;
  s.sender = req.sender;
  s.reflector = req.reflector;
  s.ssid = static_cast<uint32_t>(ssid);
  s.interval_ms = req.interval_ms;
  s.timestamp_format = req.timestamp_format;
  s.reflector_mode = req.reflector_mode;
  s.engine = req.engine;
  s.authenticated = req.authenticated;
  if (s.authenticated) s.auth_key_hex = RandomHex(32);
  s.running = req.start;
  s.created_ms = NowUtcMs();
  // reflector first, so the first test packet finds it
  if (auto st = PushSession(s, false, false); !st) {
    ClientFor(s.reflector)->DestroyStampSession(pb::STAMP_ROLE_REFLECTOR, s.ssid);
    return EdgeError("reflector", st.error());
  }
  if (auto st = PushSession(s, true, false); !st) {
    ClientFor(s.reflector)->DestroyStampSession(pb::STAMP_ROLE_REFLECTOR, s.ssid);
    ClientFor(s.sender)->DestroyStampSession(pb::STAMP_ROLE_SENDER, s.ssid);
    return EdgeError("sender", st.error());
  }
  if (auto st = store_->PutSession(s); !st) {
    ClientFor(s.reflector)->DestroyStampSession(pb::STAMP_ROLE_REFLECTOR, s.ssid);
    ClientFor(s.sender)->DestroyStampSession(pb::STAMP_ROLE_SENDER, s.ssid);
    return st.error();
  }
  ingest_.Add(s);
  std::lock_guard lock(mu_);
  auto& slot = sessions_[s.id] = SessionRuntime{s, ""};
  SEGWAN_LOG(kInfo, "sessions") << "delay session " << s.id << " " << s.sender << " -> " << s.reflector
                                << " on " << s.slice_id << (s.running ? " started" : " created");
  return ViewOf(slot);
}

std::vector<SessionView> Controller::Sessions(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<SessionView> out;
  for (const auto& [id, r] : sessions_) {
    if (Visible(p, r.s.tenant_id)) out.push_back(ViewOf(r));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.session.ssid < b.session.ssid; });
  return out;
}

Result<SessionView> Controller::GetSession(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || !Visible(p, it->second.s.tenant_id)) {
    return ApiError(kNotFound, "id", "no delay session '" + id + "'");
  }
  return ViewOf(it->second);
}

Result<SessionView> Controller::SetRunning(const Principal& p, const std::string& id, bool running) {
  DelaySession s;
  {
    std::lock_guard lock(mu_);
    s = sessions_.at(id).s;
  }
  s.running = running;
  if (auto st = store_->PutSession(s); !st) return st.error();
  {
    std::lock_guard lock(mu_);
    sessions_.at(id).s.running = running;
  }
  return GetSession(p, id);
}

Result<SessionView> Controller::StartSession(const Principal& p, const std::string& id) {
  std::lock_guard cfg(config_mu_);
  auto v = GetSession(p, id);
  if (!v) return v;
  if (v->session.running) return v;
  for (bool sender : {false, true}) {
    const auto& d = sender ? v->session.sender : v->session.reflector;
    if (!Reachable(d)) return ApiError(kConflict, sender ? "sender" : "reflector", "device '" + d + "' is not connected");
    auto st = ClientFor(d)->StartStampSession(sender ? pb::STAMP_ROLE_SENDER : pb::STAMP_ROLE_REFLECTOR, v->session.ssid);
    if (!st) return EdgeError(sender ? "sender" : "reflector", st.error());
  }
  return SetRunning(p, id, true);
}

Result<SessionView> Controller::StopSession(const Principal& p, const std::string& id) {
  std::lock_guard cfg(config_mu_);
  auto v = GetSession(p, id);
  if (!v) return v;
  if (!v->session.running) return v;
  // The sender stops sending; the reflector stays ready for packets still in flight.
  if (Reachable(v->session.sender)) {
    auto st = ClientFor(v->session.sender)->StopStampSession(pb::STAMP_ROLE_SENDER, v->session.ssid);
    if (!st && st.error().code != kGrpcNotFound) return EdgeError("sender", st.error());
  }
  return SetRunning(p, id, false);
}

Status Controller::DeleteSession(const Principal& p, const std::string& id) {
  std::lock_guard cfg(config_mu_);
  auto v = GetSession(p, id);
  if (!v) return v.error();
  // Forgotten first (with no write of its results in flight): a store that cannot forget it
  // leaves the session as it was.
  if (auto st = ingest_.Remove(id, [&] { return store_->DeleteSession(id); }); !st) return st.error();
  {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
  }
  for (bool sender : {true, false}) {
    const auto& d = sender ? v->session.sender : v->session.reflector;
    if (!Reachable(d)) continue;  // an edge that is away forgets its sessions when it restarts
    auto edge_lock = LockEdge(d);
    auto st = ClientFor(d)->DestroyStampSession(sender ? pb::STAMP_ROLE_SENDER : pb::STAMP_ROLE_REFLECTOR,
                                                v->session.ssid);
    if (!st && st.error().code != kGrpcNotFound) {
      SEGWAN_LOG(kWarn, "sessions") << "destroying " << id << ": " << st.error().message;
    }
  }
  SEGWAN_LOG(kInfo, "sessions") << "delay session " << id << " deleted";
  return Status::Ok();
}

Result<std::vector<Sample>> Controller::Results(const Principal& p, const std::string& id, int64_t since_ms,
                                                size_t limit) {
  if (auto v = GetSession(p, id); !v) return v.error();
  return store_->Samples(id, TaiUtc{tai_offset_s_}.TaiNs(since_ms), limit);
}

Result<std::vector<std::pair<IntervalAggregate, bool>>> Controller::Intervals(const Principal& p,
                                                                              const std::string& id,
                                                                              int64_t since_ms, size_t limit) {
  if (auto v = GetSession(p, id); !v) return v.error();
  std::vector<std::pair<IntervalAggregate, bool>> out;
  auto closed = store_->Aggregates(id, since_ms, limit);
  if (!closed) return closed.error();
  for (auto& a : *closed) out.emplace_back(std::move(a), false);
  if (out.size() < limit) {
    if (auto open = ingest_.OpenInterval(id); open && open->start_ms + open->length_ms > since_ms) {
      out.emplace_back(*open, true);
    }
  }
  return out;
}

Result<SessionStats> Controller::Stats(const Principal& p, const std::string& id, int64_t since_ms) {
  auto intervals = Intervals(p, id, since_ms, 10'000'000);
  if (!intervals) return intervals.error();
  SessionStats st;
  st.since_ms = since_ms;
  {
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(id); it != sessions_.end()) st.stateful = it->second.s.reflector_mode == ReflectorMode::kStateful;
  }
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

// ---- polling ----------------------------------------------------------------------------
void Controller::PollOnce() {
  for (const auto& edge : PolledEdges()) PollEdge(edge);
  (void)ingest_.Flush();  // tests read the store right after
}

// The edges that send delay probes or colour a monitored flow: the ones polled.
std::set<std::string> Controller::PolledEdges() {
  std::set<std::string> out = StreamedEdges();
  std::lock_guard lock(mu_);
  for (const auto& [id, r] : loss_) out.insert(r.s.from);
  return out;
}

// An interval is closed once its end is this far behind: its samples have arrived (two
// polls, or two stream batches and a flush).
int64_t Controller::CloseGraceMs() const {
  return 2 * (o_.results == ResultMode::kStream ? 1000 : o_.poll_interval.count()) + 500;
}

std::set<std::string> Controller::StreamedEdges() {
  std::set<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, r] : sessions_) out.insert(r.s.sender);
  return out;
}

// One edge's results, fetched with no lock held: a slow edge delays only its own sessions.
// In notification mode the edge's stream brings them; the poll then only closes intervals
// (and reads loss counters), unless the edge's agent has no stream.
void Controller::PollEdge(const std::string& edge) {
  std::vector<std::pair<std::string, uint32_t>> jobs;  // session id, ssid
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, r] : sessions_) {
      if (r.s.sender == edge) jobs.emplace_back(id, r.s.ssid);
    }
  }
  const bool fetch = !streams_ || streams_->Unsupported(edge);
  std::vector<std::string> ids;
  for (const auto& [id, ssid] : jobs) {
    ids.push_back(id);
    if (!fetch) continue;
    if (!Reachable(edge)) {
      ingest_.Polled(id, Error{edge + ": not connected", "", kGrpcUnavailable});
      continue;
    }
    ingest_.Polled(id, ClientFor(edge)->GetStampSessionResults(ssid));
  }
  ingest_.CloseDue(ids, NowUtcMs(), CloseGraceMs());
  PollLoss(edge);
}

// ---- reconciliation ----------------------------------------------------------------------
bool Controller::Reconcile(const std::string& device_id) {
  // No controller-wide lock: only this edge's, which REST changes to this edge take too.
  auto edge_lock = LockEdge(device_id);
  if (!Reachable(device_id)) return true;  // a disconnected edge is reconciled when it registers
  auto client = ClientFor(device_id);
  auto state = client->GetState();
  if (!state) {
    SEGWAN_LOG(kWarn, "reconcile") << device_id << ": " << state.error().message << " (will retry)";
    return false;
  }
  bool done = true;
  std::vector<Slice> wanted;
  std::vector<DelaySession> sessions;
  std::map<std::string, Device> devices;
  std::set<std::string> inflight;
  {
    std::lock_guard lock(mu_);
    inflight = inflight_slices_;
    for (const auto& [id, s] : slices_) {
      if (std::any_of(s.sites.begin(), s.sites.end(), [&](const auto& x) { return x.device == device_id; })) {
        wanted.push_back(s);
      }
    }
    for (const auto& [id, r] : sessions_) {
      if (r.s.sender == device_id || r.s.reflector == device_id) sessions.push_back(r.s);
    }
    devices = devices_;
  }
  int applied = 0, removed = 0, pushed = 0;
  static const std::regex kOurs("^sl[0-9]+$");
  for (const auto& have : state->slices()) {
    const bool keep = std::any_of(wanted.begin(), wanted.end(), [&](const auto& s) { return s.id == have.id(); });
    // A slice a REST call is putting in place right now is that call's to finish.
    if (!keep && !inflight.count(have.id()) && std::regex_match(have.id(), kOurs)) {
      if (client->RemoveSlice(have.id())) ++removed;
      else done = false;
    }
  }
  for (const auto& s : wanted) {
    if (inflight.count(s.id)) continue;
    auto plan = PlanSlice(s, devices);
    EdgeState es{"applied", ""};
    if (!plan) {
      es = {"error", plan.error().ToString()};
    } else if (auto r = client->ApplySlice(plan->at(device_id)); !r) {
      es = {Refused(r.error()) ? "error" : "pending", r.error().message};
      if (!Refused(r.error())) done = false;
    } else {
      ++applied;
    }
    std::lock_guard lock(mu_);
    if (slices_.count(s.id)) slice_edges_[s.id][device_id] = es;
  }
  for (const auto& s : sessions) {  // each involves this device as sender or reflector
    std::string err;
    if (s.reflector == device_id) {
      if (auto st = PushSession(s, false, true); !st) err = st.error().message;
    }
    if (s.sender == device_id && err.empty()) {
      if (auto st = PushSession(s, true, true); !st) err = st.error().message;
    }
    if (err.empty()) ++pushed;
    else done = false;
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(s.id); it != sessions_.end()) it->second.error = err;
  }
  std::vector<LossSession> losses;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, r] : loss_) {
      if (r.s.from == device_id || r.s.to == device_id) losses.push_back(r.s);
    }
  }
  for (const auto& l : losses) {
    const auto st = PushLoss(l);
    if (!st) done = false;
    std::lock_guard lock(mu_);
    if (auto it = loss_.find(l.id); it != loss_.end()) it->second.error = st ? "" : st.error().message;
  }
  SEGWAN_LOG(kInfo, "reconcile") << device_id << ": " << applied << " slice(s) applied, " << removed
                                 << " stale removed, " << pushed << " delay session side(s) in place"
                                 << (done ? "" : "; not complete, will retry");
  return done;
}

std::unique_lock<std::mutex> Controller::LockEdge(const std::string& device_id) {
  std::mutex* m;
  {
    std::lock_guard lock(mu_);
    m = &edge_mu_[device_id];  // made in place on first use; entries (map nodes) never move or go
  }
  return std::unique_lock<std::mutex>(*m);
}

// ---- loss monitoring ---------------------------------------------------------------------
Result<std::vector<std::string>> Controller::FlowSegments(const Slice& s, const std::string& from,
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

Status Controller::PushLoss(const LossSession& s) {
  if (auto st = ClientFor(s.from)->StartLossMonitoring(s.segments, pb::LOSS_DIRECTION_INGRESS, s.period_ms); !st) return st;
  return ClientFor(s.to)->StartLossMonitoring(s.segments, pb::LOSS_DIRECTION_EGRESS, s.period_ms);
}

Result<LossView> Controller::CreateLossSession(const Principal& p, const LossRequest& req) {
  auto owner = Owner(p, req.tenant);
  if (!owner) return owner.error();
  if (req.family != "ipv6" && req.family != "ipv4") return ApiError(kBadRequest, "family", "must be \"ipv6\" or \"ipv4\"");
  if (req.period_ms < 1000 || req.period_ms > 3'600'000) return ApiError(kBadRequest, "period_ms", "must be 1000 to 3600000");
  if (req.from == req.to) return ApiError(kBadRequest, "to", "must differ from from");
  std::lock_guard cfg(config_mu_);
  LossSession s;
  {
    std::lock_guard lock(mu_);
    if (auto e = OverQuota(owner->id, {req.from, req.to}, false)) return *e;
    auto sl = slices_.find(req.slice);
    if (sl == slices_.end() || sl->second.tenant_id != owner->id) return ApiError(kNotFound, "slice", "no slice '" + req.slice + "'");
    auto segs = FlowSegments(sl->second, req.from, req.to, req.family);
    if (!segs) return ApiError(kBadRequest, segs.error().field, segs.error().message);
    for (const auto& [id, r] : loss_) {
      if (r.s.slice_id == req.slice && r.s.from == req.from && r.s.to == req.to && r.s.family == req.family) {
        return ApiError(kConflict, "to", "loss session " + id + " already monitors this flow");
      }
    }
    for (const auto* f : {"from", "to"}) {
      const auto& d = devices_.at(std::string(f) == "from" ? req.from : req.to);
      if (std::find(d.capabilities.begin(), d.capabilities.end(), "loss") == d.capabilities.end()) {
        return ApiError(kUnprocessable, f, "device '" + d.id + "' has no loss monitoring (its agent could not load the programs)");
      }
    }
    s.segments = *segs;
  }
  for (const auto* f : {"from", "to"}) {
    const auto& d = std::string(f) == "from" ? req.from : req.to;
    if (!Reachable(d)) return ApiError(kConflict, f, "device '" + d + "' is not connected or not enabled");
  }
  const auto n = store_->NextId("loss");
  if (!n) return n.error();
  s.id = "ls" + std::to_string(*n);
  s.tenant_id = owner->id;
  s.slice_id = req.slice;
  s.from = req.from;
  s.to = req.to;
  s.family = req.family;
  s.period_ms = req.period_ms;
  s.created_ms = NowUtcMs();
  if (auto st = ClientFor(s.from)->StartLossMonitoring(s.segments, pb::LOSS_DIRECTION_INGRESS, s.period_ms); !st) {
    return EdgeError("from", st.error());
  }
  if (auto st = ClientFor(s.to)->StartLossMonitoring(s.segments, pb::LOSS_DIRECTION_EGRESS, s.period_ms); !st) {
    ClientFor(s.from)->StopLossMonitoring(s.segments, pb::LOSS_DIRECTION_INGRESS);
    return EdgeError("to", st.error());
  }
  if (auto st = store_->PutLossSession(s); !st) {
    ClientFor(s.from)->StopLossMonitoring(s.segments, pb::LOSS_DIRECTION_INGRESS);
    ClientFor(s.to)->StopLossMonitoring(s.segments, pb::LOSS_DIRECTION_EGRESS);
    return st.error();
  }
  std::lock_guard lock(mu_);
  auto& r = loss_[s.id];
  r.s = s;
  SEGWAN_LOG(kInfo, "loss") << "loss session " << s.id << " " << s.from << " -> " << s.to << " on " << s.slice_id
                            << " (" << s.family << ", period " << s.period_ms << " ms)";
  return LossView{r.s, r.error, r.last};
}

std::vector<LossView> Controller::LossSessions(const Principal& p) {
  std::lock_guard lock(mu_);
  std::vector<LossView> out;
  for (const auto& [id, r] : loss_) {
    if (Visible(p, r.s.tenant_id)) out.push_back({r.s, r.error, r.last});
  }
  return out;
}

Result<LossView> Controller::GetLossSession(const Principal& p, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = loss_.find(id);
  if (it == loss_.end() || !Visible(p, it->second.s.tenant_id)) return ApiError(kNotFound, "id", "no loss session '" + id + "'");
  return LossView{it->second.s, it->second.error, it->second.last};
}

Status Controller::DeleteLossSession(const Principal& p, const std::string& id) {
  std::lock_guard cfg(config_mu_);
  auto v = GetLossSession(p, id);
  if (!v) return v.error();
  const auto& s = v->session;
  {
    std::lock_guard write(loss_write_mu_);  // no period of it is being written
    // Forgotten first: a store that cannot forget it leaves the session as it was.
    if (auto st = store_->DeleteLossSession(id); !st) return st.error();
    std::lock_guard lock(mu_);
    loss_.erase(id);
  }
  for (const auto& [d, dir] : {std::pair{s.from, pb::LOSS_DIRECTION_INGRESS}, std::pair{s.to, pb::LOSS_DIRECTION_EGRESS}}) {
    if (!Reachable(d)) continue;  // an edge that is away loses unpinned counters at restart anyway
    auto edge_lock = LockEdge(d);
    if (auto st = ClientFor(d)->StopLossMonitoring(s.segments, dir); !st && st.error().code != kGrpcNotFound) {
      SEGWAN_LOG(kWarn, "loss") << "stopping " << id << " on " << d << ": " << st.error().message;
    }
  }
  SEGWAN_LOG(kInfo, "loss") << "loss session " << id << " deleted";
  return Status::Ok();
}

Result<std::vector<LossPeriod>> Controller::LossPeriods(const Principal& p, const std::string& id, int64_t since_ms,
                                                        size_t limit) {
  if (auto v = GetLossSession(p, id); !v) return v.error();
  return store_->LossPeriods(id, since_ms, limit);
}

// Half a period after the ingress switched colour, the colour it stopped painting is final at
// both ends: its cumulative counters, less those at that colour's previous close, are the
// period's sent and received packets.
void Controller::PollLoss(const std::string& from) {
  std::vector<LossRuntime> jobs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, r] : loss_) {
      if (r.s.from == from) jobs.push_back(r);
    }
  }
  for (auto& r : jobs) {
    const auto& s = r.s;
    if (!Reachable(s.from) || !Reachable(s.to)) continue;
    auto tx = ClientFor(s.from)->ReadLossCounters(s.segments, pb::LOSS_DIRECTION_INGRESS);
    std::optional<LossPeriod> period;
    LossCursor cursor = r.cursor;
    std::string err;
    auto reading = [](const pb::ReadLossCountersResponse& x) {
      IngressReading out{x.period_index(), x.active_colour(), x.colour_switched_at_ns(), {}};
      for (const auto& c : x.counters()) out.packets[c.colour() & 1] = c.packets();
      return out;
    };
    if (!tx) {
      err = tx.error().message;
    } else {
      const auto in = reading(*tx);
      switch (NextLossStep(cursor, in, NowTaiNs(), s.period_ms)) {
        case LossStepKind::kNothing:
          continue;  // nothing closed yet
        case LossStepKind::kRestarted:
          cursor.period_index = in.period_index;  // the agent restarted: its period count did too
          break;
        case LossStepKind::kNeedEgress: {
          auto rr = ClientFor(s.to)->ReadLossCounters(s.segments, pb::LOSS_DIRECTION_EGRESS);
          if (!rr) {
            err = rr.error().message;
            break;
          }
          const auto closed = CloseLossPeriod(cursor, in, reading(*rr).packets, s.period_ms, tai_offset_s_);
          if (!closed.period) {
            SEGWAN_LOG(kWarn, "loss") << s.id << ": counters went back (an agent restarted unpinned); starting over";
          }
          cursor = closed.cursor;
          period = closed.period;
          break;
        }
      }
    }
    // A period the store cannot keep is not taken: the cursor stays, and the next poll
    // computes the same period again (the counters only grow).
    std::lock_guard write(loss_write_mu_);
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
      ++loss_errors_;
      if (it->second.error != err) SEGWAN_LOG(kWarn, "loss") << s.id << ": " << err;
      it->second.error = err;
      continue;
    }
    it->second.error.clear();
    it->second.cursor = cursor;
    if (period) it->second.last = period;
  }
}

Metrics Controller::GetMetrics() {
  Metrics m;
  static_cast<IngestMetrics&>(m) = ingest_.Metrics();
  m.poll_errors += loss_errors_;
  m.samples_stored = store_->SamplesStored();
  m.store_errors = store_->Errors();
  if (streams_) {
    for (const auto& e : StreamedEdges()) m.streams_up += streams_->Up(e) ? 1 : 0;
  }
  std::lock_guard lock(mu_);
  m.devices_known = devices_.size();
  for (const auto& [id, rt] : runtime_) m.devices_connected += rt.connected ? 1 : 0;
  return m;
}

}  // namespace segwan::controller
