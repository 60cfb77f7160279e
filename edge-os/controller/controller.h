#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "edge-os/alerts/webhooks.h"
#include "edge-os/controller/errors.h"
#include "edge-os/controller/model.h"
#include "edge-os/controller/reconciler.h"
#include "edge-os/devices/registry.h"
#include "edge-os/monitoring/ingest.h"
#include "edge-os/monitoring/stats.h"
#include "edge-os/southbound/edge_client.h"
#include "edge-os/southbound/edge_workers.h"
#include "edge-os/sessions/delay_sessions.h"
#include "edge-os/sessions/loss_sessions.h"
#include "edge-os/slices/slices.h"
#include "edge-os/southbound/edge_locks.h"
#include "edge-os/southbound/result_streams.h"
#include "edge-os/steering/steering.h"
#include "edge-os/tenants/tenants.h"
#include "edge-os/store/store.h"
#include "segwan/result.h"
#include "segwan/v1/edge.pb.h"
#include "segwan/v1/registration.pb.h"

namespace segwan::controller {

// How delay results reach the controller: fetched session by session (polling), or pushed
// by each edge on one stream (notification).
enum class ResultMode { kPoll, kStream };

struct ControllerOptions {
  std::string device_token;  // edges present it to register; empty refuses every edge
  bool auto_enable = false;  // enable devices at first registration (lab)
  std::chrono::milliseconds heartbeat{2000};
  int missed_heartbeats = 3;  // this many missed in a row: disconnected
  int64_t aggregate_interval_ms = 30'000;
  std::chrono::milliseconds poll_interval{1000};
  ResultMode results = ResultMode::kPoll;  // edge-os itself defaults to kStream
  std::chrono::milliseconds flush_interval{100};  // results to the store at most this late
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // samples and aggregates older than this go
  bool start_threads = true;  // tests drive PollOnce/CheckHeartbeats/RunQueued by hand
  // Shares: a tenant's slices and sessions (delay and loss), a device's sessions (as either end).
  size_t max_slices_per_tenant = 100;
  size_t max_sessions_per_tenant = 500;
  size_t max_sessions_per_device = 1000;
  // SLA steering: the operator's core SIDs (a candidate path via each), and how long after
  // its end a probe window is judged (the result stream's batching plus a margin).
  std::vector<SteeringCandidate> core_sids;
  std::chrono::milliseconds steering_grace{400};
  Webhooks::Options webhooks;  // where tenants' alerts may go, retries
};

struct Metrics : IngestMetrics {
  size_t devices_connected = 0, devices_known = 0;
  uint64_t samples_stored = 0;
  uint64_t store_errors = 0;  // failed store reads and writes
  size_t streams_up = 0;      // notification mode: edges whose result stream delivers
  SteeringMetrics steering;
  uint64_t webhook_failures = 0;  // alerts given up on
};

// The controller: the services wired together, and the threads that keep time. Every REST
// call and southbound event lands here and is handed to the service whose job it is:
//   Tenants (who a token speaks for), DeviceRegistry (registration, heartbeats, channels),
//   SliceService, DelaySessions, LossSessions (intent, validation, push with rollback),
//   Reconciler (an edge back to the intent), ResultIngest (results to statistics and the
//   store), ResultStreams (notification mode), EdgeWorkers (one serial worker per edge).
// It keeps no state of its own beyond the shares that span services.
class Controller {
 public:
  Controller(Store* store, EdgeConnector* edges, ControllerOptions options);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // What went wrong reading the store at construction (the controller is then unusable).
  const std::optional<Error>& load_error() const { return load_error_; }

  void Start();  // background threads (time keeping, per-edge workers, result streams)
  void Stop();

  // ---- authentication and tenants
  void SetOperatorToken(std::string token) { tenants_.SetOperatorToken(std::move(token)); }
  std::optional<Principal> Authenticate(const std::string& token) { return tenants_.Authenticate(token); }
  Result<std::pair<Tenant, std::string>> CreateTenant(const Principal& p, const std::string& name) {
    return tenants_.Create(p, name);
  }
  Result<std::vector<Tenant>> ListTenants(const Principal& p) { return tenants_.List(p); }

  // ---- devices (southbound registration and the operator)
  Result<segwan::v1::RegisterDeviceResponse> Register(const segwan::v1::RegisterDeviceRequest& req,
                                                      const std::string& peer, bool authenticated = false) {
    return registry_.Register(req, peer, authenticated);
  }
  bool Heartbeat(const std::string& device_id, const std::string& session_id) {
    return registry_.Heartbeat(device_id, session_id);
  }
  void Unregister(const std::string& device_id, const std::string& session_id) {
    registry_.Unregister(device_id, session_id);
  }
  std::vector<DeviceView> Devices() { return registry_.List(); }
  Result<DeviceView> GetDevice(const std::string& id) { return registry_.Get(id); }
  Result<DeviceView> SetEnabled(const Principal& p, const std::string& id, bool enabled) {
    return registry_.SetEnabled(p, id, enabled);
  }
  // Forgets a device (operator). Refused (409) while a slice or a session uses it.
  Status DeleteDevice(const Principal& p, const std::string& id) { return registry_.Delete(p, id); }
  // Marks a device disconnected now (its credentials were revoked): nothing is pushed to it
  // until it registers again.
  void Disconnect(const std::string& id) { registry_.Disconnect(id); }

  // ---- slices
  Result<SliceView> CreateSlice(const Principal& p, const SliceRequest& req);
  Result<SliceView> UpdateSlice(const Principal& p, const std::string& id, const SliceRequest& req) {
    return slices_.Update(p, id, req);
  }
  std::vector<SliceView> Slices(const Principal& p) { return slices_.List(p); }
  Result<SliceView> GetSlice(const Principal& p, const std::string& id) { return slices_.Get(p, id); }
  Status DeleteSlice(const Principal& p, const std::string& id) { return slices_.Delete(p, id); }

  // ---- delay sessions
  Result<SessionView> CreateSession(const Principal& p, const SessionRequest& req);
  std::vector<SessionView> Sessions(const Principal& p) { return sessions_.List(p); }
  Result<SessionView> GetSession(const Principal& p, const std::string& id) { return sessions_.Get(p, id); }
  Result<SessionView> StartSession(const Principal& p, const std::string& id) { return sessions_.SetRunning(p, id, true); }
  Result<SessionView> StopSession(const Principal& p, const std::string& id) { return sessions_.SetRunning(p, id, false); }
  Status DeleteSession(const Principal& p, const std::string& id) { return sessions_.Delete(p, id); }
  Result<std::vector<Sample>> Results(const Principal& p, const std::string& id, int64_t since_ms, size_t limit) {
    return sessions_.Results(p, id, since_ms, limit);
  }
  Result<std::vector<std::pair<IntervalAggregate, bool>>> Intervals(const Principal& p, const std::string& id,
                                                                    int64_t since_ms, size_t limit) {
    return sessions_.Intervals(p, id, since_ms, limit);
  }
  Result<SessionStats> Stats(const Principal& p, const std::string& id, int64_t since_ms) {
    return sessions_.Stats(p, id, since_ms);
  }

  // ---- loss monitoring (alternate marking)
  Result<LossView> CreateLossSession(const Principal& p, const LossRequest& req);
  std::vector<LossView> LossSessions(const Principal& p) { return loss_.List(p); }
  Result<LossView> GetLossSession(const Principal& p, const std::string& id) { return loss_.Get(p, id); }
  Status DeleteLossSession(const Principal& p, const std::string& id) { return loss_.Delete(p, id); }
  Result<std::vector<LossPeriod>> LossPeriods(const Principal& p, const std::string& id, int64_t since_ms,
                                              size_t limit) {
    return loss_.Periods(p, id, since_ms, limit);
  }

  // ---- SLA steering
  Result<SlaClass> CreateSla(const Principal& p, const SlaRequest& req);
  std::vector<SlaClass> Slas(const Principal& p) { return steering_.Slas(p); }
  Result<SlaClass> GetSla(const Principal& p, const std::string& id) { return steering_.GetSla(p, id); }
  Status DeleteSla(const Principal& p, const std::string& id) { return steering_.DeleteSla(p, id); }
  Result<PolicyView> CreatePolicy(const Principal& p, const PolicyRequest& req);
  std::vector<PolicyView> Policies(const Principal& p) { return steering_.Policies(p); }
  Result<PolicyView> GetPolicy(const Principal& p, const std::string& id) { return steering_.GetPolicy(p, id); }
  Status DeletePolicy(const Principal& p, const std::string& id) { return steering_.DeletePolicy(p, id); }
  Result<std::vector<SteeringEvent>> SteeringEvents(const Principal& p, const std::string& slice, int64_t before_id,
                                                    size_t limit) {
    return steering_.Events(p, slice, before_id, limit);
  }
  void SteeringTick(int64_t now_ms) { steering_.Tick(now_ms); }  // tests; a thread does it every 50 ms
  // A tenant's webhook: a JSON POST per alert (raised on a violation, critical when no
  // candidate complies; cleared when the path complies again).
  Result<WebhookStatus> SetWebhook(const Principal& p, const std::string& tenant, const std::string& url) {
    return webhooks_.Set(p, tenant, url);
  }
  Result<WebhookStatus> GetWebhook(const Principal& p, const std::string& tenant) { return webhooks_.Get(p, tenant); }
  Status RemoveWebhook(const Principal& p, const std::string& tenant) { return webhooks_.Remove(p, tenant); }
  void DeliverAlerts() { webhooks_.DeliverDue(); }  // tests; a thread does it

  Metrics GetMetrics();
  int32_t tai_offset_s() const { return tai_offset_s_; }

  // ---- the background work, callable directly by tests
  void PollOnce();  // delay results and loss counters of every edge, one after the other
  void CheckHeartbeats() { registry_.CheckHeartbeats(); }
  void RunQueued();  // reconciles queued by registrations and enables
  // Converges one edge to the intent; false when it could not finish (retried with backoff).
  bool Reconcile(const std::string& device_id) { return reconciler_.Run(device_id); }

 private:
  Status Load();
  std::optional<Error> CheckShares(const std::string& tenant, const std::vector<std::string>& devices);
  std::optional<Error> SliceUsers(const Slice& prev, const Slice* next);
  std::optional<Error> DeviceUsers(const std::string& id);
  std::set<std::string> PolledEdges();
  void PollEdge(const std::string& edge);
  void SchedulePolls();
  void PostPolls(const std::set<std::string>& edges);  // one poll in flight per edge at most
  void ScheduleReconciles();
  void Kick();
  void Loop();
  int64_t CloseGraceMs() const;

  Store* store_;
  ControllerOptions o_;
  int32_t tai_offset_s_ = 0;
  std::optional<Error> load_error_;

  ResultIngest ingest_;  // samples, statistics, intervals and their writing
  EdgeLocks locks_;
  Tenants tenants_;
  DeviceRegistry registry_;
  SliceService slices_;
  DelaySessions sessions_;
  class LossSessions loss_;
  Webhooks webhooks_;
  SteeringService steering_;
  Reconciler reconciler_;
  std::unique_ptr<ResultStreams> streams_;  // notification mode, once started
  EdgeWorkers workers_;   // one serial worker per edge for its polls and reconciles

  std::mutex poll_mu_;
  std::set<std::string> polling_;  // edges with a poll in flight
  std::mutex thread_mu_;  // guards stop_ and kick_
  std::condition_variable cv_;
  bool stop_ = false;
  bool kick_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace segwan::controller
