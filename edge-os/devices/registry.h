#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/southbound/edge_client.h"
#include "edge-os/store/store.h"
#include "segwan/result.h"
#include "segwan/v1/registration.pb.h"

namespace segwan::controller {

// What one device may report at registration.
inline constexpr int kMaxDeviceInterfaces = 256;
inline constexpr int kMaxInterfaceAddresses = 64;

// A device as the API shows it: what the store keeps plus whether it is connected now.
struct DeviceView {
  Device device;
  bool connected = false;
  int64_t last_seen_ms = 0;
};

struct RegistryOptions {
  std::string device_token;  // plaintext mode: edges present it to register; empty refuses every edge
  bool auto_enable = false;  // enable devices at first registration (lab)
  std::chrono::milliseconds heartbeat{2000};
  int missed_heartbeats = 3;  // this many missed in a row: disconnected
};

// What the registry tells the rest of the controller. Called with no lock held.
struct RegistryHooks {
  std::function<void(const std::string&)> registered;   // a new life of the device: fresh result stream
  std::function<void(const std::string&)> converge;     // registered or enabled: reconcile it
  std::function<std::optional<Error>(const std::string&)> users;  // a conflict error while something uses it
  std::function<void(const std::string&)> deleted;
};

// The edge routers: registration, heartbeats, enable/disable, and the channel to each.
// Thread-safe; its lock is a leaf (nothing else is called while it is held).
class DeviceRegistry {
 public:
  DeviceRegistry(Store* store, EdgeConnector* edges, RegistryOptions options)
      : store_(store), edges_(edges), o_(std::move(options)) {}
  Status Load();
  void SetHooks(RegistryHooks hooks) { hooks_ = std::move(hooks); }

  // `authenticated`: the caller's certificate proved req.device_id (mutual TLS); otherwise
  // the shared registration token must match (plaintext mode).
  Result<segwan::v1::RegisterDeviceResponse> Register(const segwan::v1::RegisterDeviceRequest& req,
                                                      const std::string& peer, bool authenticated);
  // false: this registration is unknown (the edge must register again)
  bool Heartbeat(const std::string& device_id, const std::string& session_id);
  void Unregister(const std::string& device_id, const std::string& session_id);
  // Marks a device disconnected now (its credentials were revoked).
  void Disconnect(const std::string& id);
  void CheckHeartbeats();  // disconnects the devices whose heartbeats stopped

  std::vector<DeviceView> List();
  Result<DeviceView> Get(const std::string& id);
  Result<DeviceView> SetEnabled(const Principal& p, const std::string& id, bool enabled);
  // Operator only; refused (409) while anything uses the device.
  Status Delete(const Principal& p, const std::string& id);

  // A known device (not one being deleted).
  std::optional<Device> Find(const std::string& id);
  std::map<std::string, Device> All();
  bool Reachable(const std::string& id);  // enabled and connected
  std::shared_ptr<EdgeClient> Client(const std::string& id);  // null: unknown device
  size_t Known();
  size_t Connected();

 private:
  struct Runtime {
    bool connected = false;
    std::string session_id;
    std::chrono::steady_clock::time_point last_heartbeat;
    int64_t last_seen_ms = 0;
  };
  Store* store_;
  EdgeConnector* edges_;
  RegistryOptions o_;
  RegistryHooks hooks_;
  std::mutex mu_;
  std::map<std::string, Device> devices_;
  std::map<std::string, Runtime> runtime_;
  std::set<std::string> deleting_;
};

}  // namespace segwan::controller
