#include "edge-os/devices/registry.h"

#include "edge-os/controller/errors.h"
#include "edge-os/controller/tokens.h"
#include "segwan/clock.h"
#include "segwan/log.h"
#include "segwan/net.h"
#include "segwan/text.h"

namespace segwan::controller {

namespace pb = segwan::v1;

namespace {

const char* ModeName(pb::SliceMode m) {
  return m == pb::SLICE_MODE_VRF ? "vrf" : m == pb::SLICE_MODE_TABLE ? "table" : "";
}

// What one registration may carry: enough for a big router, not enough to hurt the store.
std::optional<Error> CheckRegistration(const pb::RegisterDeviceRequest& req) {
  if (!IsValidIdentifier(req.device_id())) {
    return ApiError(kBadRequest, "device_id", "must match [a-z0-9][a-z0-9-]{0,62}");
  }
  if (!ParseHostPort(req.grpc_address())) {
    return ApiError(kBadRequest, "grpc_address", "'" + req.grpc_address() + "' is not host:port");
  }
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
  return std::nullopt;
}

}  // namespace

Status DeviceRegistry::Load() {
  auto devices = store_->Devices();
  if (!devices) return devices.error();
  std::lock_guard lock(mu_);
  for (auto& d : *devices) devices_.emplace(d.id, d);
  return Status::Ok();
}

Result<pb::RegisterDeviceResponse> DeviceRegistry::Register(const pb::RegisterDeviceRequest& req,
                                                            const std::string& peer, bool authenticated) {
  if (!authenticated && (o_.device_token.empty() || !SameSecret(req.token(), o_.device_token))) {
    SEGWAN_LOG(kWarn, "registration") << "refused device '" << req.device_id() << "' from " << peer
                                      << ": unknown token";
    return ApiError(kUnauthenticated, "token", "unknown registration token");
  }
  if (auto e = CheckRegistration(req)) return *e;
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
  {
    std::lock_guard lock(mu_);
    if (deleting_.count(d.id)) return ApiError(kUnavailable, "device_id", "the device is being deleted");
    auto it = devices_.find(d.id);
    d.enabled = it != devices_.end() ? it->second.enabled : o_.auto_enable;
  }
  // Stored first: a registration the store cannot keep is refused (UNAVAILABLE) and retried
  // by the edge, rather than half taken.
  if (auto st = store_->PutDevice(d); !st) return st.error();
  edges_->Reset(d.id);  // a fresh channel for the edge's new life
  pb::RegisterDeviceResponse out;
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
  if (hooks_.registered) hooks_.registered(d.id);
  out.set_enabled(d.enabled);
  out.set_heartbeat_interval_ms(static_cast<uint32_t>(o_.heartbeat.count()));
  SEGWAN_LOG(kInfo, "registration") << "device " << d.id << " registered from " << peer << " ("
                                    << (d.enabled ? "enabled" : "disabled until an operator enables it")
                                    << ", " << d.grpc_address << ")";
  if (d.enabled && hooks_.converge) hooks_.converge(d.id);
  return out;
}

bool DeviceRegistry::Heartbeat(const std::string& device_id, const std::string& session_id) {
  std::lock_guard lock(mu_);
  auto it = runtime_.find(device_id);
  if (it == runtime_.end() || it->second.session_id != session_id || session_id.empty()) return false;
  if (!it->second.connected) SEGWAN_LOG(kInfo, "registration") << "device " << device_id << " is back";
  it->second.connected = true;
  it->second.last_heartbeat = std::chrono::steady_clock::now();
  it->second.last_seen_ms = NowUtcMs();
  return true;
}

void DeviceRegistry::Unregister(const std::string& device_id, const std::string& session_id) {
  std::lock_guard lock(mu_);
  auto it = runtime_.find(device_id);
  if (it == runtime_.end() || it->second.session_id != session_id) return;
  it->second.connected = false;
  it->second.session_id.clear();
  SEGWAN_LOG(kInfo, "registration") << "device " << device_id << " unregistered";
}

void DeviceRegistry::Disconnect(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = runtime_.find(id);
  if (it == runtime_.end()) return;
  it->second.connected = false;
  it->second.session_id.clear();
}

void DeviceRegistry::CheckHeartbeats() {
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

std::vector<DeviceView> DeviceRegistry::List() {
  std::lock_guard lock(mu_);
  std::vector<DeviceView> out;
  for (const auto& [id, d] : devices_) {
    auto rt = runtime_.find(id);
    out.push_back({d, rt != runtime_.end() && rt->second.connected,
                   rt != runtime_.end() ? rt->second.last_seen_ms : 0});
  }
  return out;
}

Result<DeviceView> DeviceRegistry::Get(const std::string& id) {
  std::lock_guard lock(mu_);
  auto d = devices_.find(id);
  if (d == devices_.end()) return ApiError(kNotFound, "id", "no device '" + id + "'");
  auto rt = runtime_.find(id);
  return DeviceView{d->second, rt != runtime_.end() && rt->second.connected,
                    rt != runtime_.end() ? rt->second.last_seen_ms : 0};
}

Result<DeviceView> DeviceRegistry::SetEnabled(const Principal& p, const std::string& id, bool enabled) {
  if (!p.is_operator) return ApiError(kForbidden, "", "only the operator enables and disables devices");
  Device d;
  {
    std::lock_guard lock(mu_);
    auto it = devices_.find(id);
    if (it == devices_.end() || deleting_.count(id)) return ApiError(kNotFound, "id", "no device '" + id + "'");
    d = it->second;
  }
  d.enabled = enabled;
  if (auto st = store_->PutDevice(d); !st) return st.error();
  {
    std::lock_guard lock(mu_);
    if (auto it = devices_.find(id); it != devices_.end()) it->second.enabled = enabled;
  }
  SEGWAN_LOG(kInfo, "devices") << "device " << id << (enabled ? " enabled" : " disabled");
  if (enabled && hooks_.converge) hooks_.converge(id);
  return Get(id);
}

// Marked first, then asked about: an object made meanwhile either sees the mark (and is
// refused) or is seen by `users` (and the deletion is).
Status DeviceRegistry::Delete(const Principal& p, const std::string& id) {
  if (!p.is_operator) return ApiError(kForbidden, "", "only the operator deletes devices");
  {
    std::lock_guard lock(mu_);
    if (!devices_.count(id)) return ApiError(kNotFound, "id", "no device '" + id + "'");
    if (!deleting_.insert(id).second) return ApiError(kConflict, "id", "device '" + id + "' is being deleted");
  }
  auto unmark = [&] {
    std::lock_guard lock(mu_);
    deleting_.erase(id);
  };
  if (hooks_.users) {
    if (auto e = hooks_.users(id)) {
      unmark();
      return *e;
    }
  }
  if (auto st = store_->DeleteDevice(id); !st) {
    unmark();
    return st.error();
  }
  {
    std::lock_guard lock(mu_);
    devices_.erase(id);
    runtime_.erase(id);
    deleting_.erase(id);
  }
  if (hooks_.deleted) hooks_.deleted(id);
  SEGWAN_LOG(kInfo, "registration") << "device " << id << " deleted";
  return Status::Ok();
}

std::optional<Device> DeviceRegistry::Find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = devices_.find(id);
  if (it == devices_.end() || deleting_.count(id)) return std::nullopt;
  return it->second;
}

std::map<std::string, Device> DeviceRegistry::All() {
  std::lock_guard lock(mu_);
  return devices_;
}

bool DeviceRegistry::Reachable(const std::string& id) {
  std::lock_guard lock(mu_);
  auto d = devices_.find(id);
  auto rt = runtime_.find(id);
  return d != devices_.end() && d->second.enabled && rt != runtime_.end() && rt->second.connected;
}

std::shared_ptr<EdgeClient> DeviceRegistry::Client(const std::string& id) {
  std::string address;
  {
    std::lock_guard lock(mu_);
    auto d = devices_.find(id);
    if (d == devices_.end()) return nullptr;
    address = d->second.grpc_address;
  }
  return edges_->Connect(id, address);
}

size_t DeviceRegistry::Known() {
  std::lock_guard lock(mu_);
  return devices_.size();
}

size_t DeviceRegistry::Connected() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, rt] : runtime_) n += rt.connected ? 1 : 0;
  return n;
}

}  // namespace segwan::controller
