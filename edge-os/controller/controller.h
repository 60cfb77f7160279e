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

#include "edge-os/controller/errors.h"
#include "edge-os/controller/model.h"
#include "edge-os/monitoring/ingest.h"
#include "edge-os/monitoring/stats.h"
#include "edge-os/southbound/edge_client.h"
#include "edge-os/southbound/edge_workers.h"
#include "edge-os/southbound/result_streams.h"
#include "edge-os/store/store.h"
#include "segwan/result.h"
#include "segwan/v1/edge.pb.h"
#include "segwan/v1/registration.pb.h"

namespace segwan::controller {

// What one device may report at registration.
inline constexpr int kMaxDeviceInterfaces = 256;
inline constexpr int kMaxInterfaceAddresses = 64;

// Who is asking: the operator (sees everything) or one tenant (sees only its own objects;
// another tenant's objects do not exist for it).
struct Principal {
  bool is_operator = false;
  std::string tenant_id;
};

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
};

// A device as the API shows it: what the store keeps plus whether it is connected now.
struct DeviceView {
  Device device;
  bool connected = false;
  int64_t last_seen_ms = 0;
};

// Where a slice stands on one of its edges.
struct EdgeState {
  std::string state;  // "applied", "pending" (edge not reachable or disabled), "error"
  std::string error;
};
struct SliceView {
  Slice slice;
  std::map<std::string, EdgeState> edges;
};

struct SessionView {
  DelaySession session;
  SessionCounters counters;
  std::string error;  // last error talking to its edges, if any
};

// Requests as the REST layer parses them.
struct SliceRequest {
  std::string tenant;  // operator only: on whose behalf
  std::string name;
  std::vector<SliceSite> sites;
  std::vector<SlicePath> paths;
};
struct SessionRequest {
  std::string tenant;  // operator only
  std::string slice;
  std::string sender, reflector;
  uint32_t interval_ms = 1000;
  TimestampFormat timestamp_format = TimestampFormat::kNtp;
  ReflectorMode reflector_mode = ReflectorMode::kStateless;
  EngineChoice engine = EngineChoice::kAuto;
  bool authenticated = false;
  bool start = true;
};

struct LossRequest {
  std::string tenant;  // operator only
  std::string slice;
  std::string from, to;  // device ids: the flow from `from`'s site to `to`'s
  std::string family = "ipv6";
  uint32_t period_ms = 10'000;
};
struct LossView {
  LossSession session;
  std::string error;
  std::optional<LossPeriod> last;  // the latest closed period
};

// Stats of a session over a span: closed intervals from the store merged with the open one.
struct SessionStats {
  DelaySet delays;
  uint64_t samples = 0;
  uint64_t sent = 0, received = 0, lost = 0, lost_direct = 0, lost_return = 0;
  int64_t since_ms = 0;
  bool stateful = false;  // lost_direct/lost_return mean something
};

struct Metrics : IngestMetrics {
  size_t devices_connected = 0, devices_known = 0;
  uint64_t samples_stored = 0;
  uint64_t store_errors = 0;  // failed store reads and writes
  size_t streams_up = 0;      // notification mode: edges whose result stream delivers
};

// The controller's domain: every REST call and every southbound event lands here. It keeps
// the intent in the store and pushes it to the edges; reconciliation makes an edge that
// (re)registers converge to the intent without anybody acting.
class Controller {
 public:
  Controller(Store* store, EdgeConnector* edges, ControllerOptions options);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // What went wrong reading the store at construction (the controller is then unusable).
  const std::optional<Error>& load_error() const { return load_error_; }

  void Start();  // background threads (poller, heartbeat watch, reconcile queue)
  void Stop();

  // ---- authentication and tenants
  void SetOperatorToken(std::string token) { operator_token_ = std::move(token); }
  std::optional<Principal> Authenticate(const std::string& token);
  // Returns the tenant and its token (shown only here).
  Result<std::pair<Tenant, std::string>> CreateTenant(const Principal& p, const std::string& name);
  Result<std::vector<Tenant>> ListTenants(const Principal& p);

  // ---- devices (southbound registration and the operator)
  // `authenticated`: the caller's certificate proved req.device_id (mutual TLS); otherwise
  // the shared registration token must match (plaintext mode).
  Result<segwan::v1::RegisterDeviceResponse> Register(const segwan::v1::RegisterDeviceRequest& req,
                                                      const std::string& peer, bool authenticated = false);
  // false: the controller does not know this session (ask the edge to register again)
  bool Heartbeat(const std::string& device_id, const std::string& session_id);
  void Unregister(const std::string& device_id, const std::string& session_id);
  std::vector<DeviceView> Devices();
  Result<DeviceView> GetDevice(const std::string& id);
  Result<DeviceView> SetEnabled(const Principal& p, const std::string& id, bool enabled);
  // Forgets a device (operator). Refused (409) while a slice or a session uses it.
  Status DeleteDevice(const Principal& p, const std::string& id);
  // Marks a device disconnected now (its credentials were revoked): nothing is pushed to it
  // until it registers again.
  void Disconnect(const std::string& id);

  // ---- slices
  Result<SliceView> CreateSlice(const Principal& p, const SliceRequest& req);
  // Replaces name, sites and paths; id, number and tenant stay. Edges that leave lose the
  // slice, edges that join get it, the others converge to the new plan.
  Result<SliceView> UpdateSlice(const Principal& p, const std::string& id, const SliceRequest& req);
  std::vector<SliceView> Slices(const Principal& p);
  Result<SliceView> GetSlice(const Principal& p, const std::string& id);
  Status DeleteSlice(const Principal& p, const std::string& id);

  // ---- delay sessions
  Result<SessionView> CreateSession(const Principal& p, const SessionRequest& req);
  std::vector<SessionView> Sessions(const Principal& p);
  Result<SessionView> GetSession(const Principal& p, const std::string& id);
  Result<SessionView> StartSession(const Principal& p, const std::string& id);
  Result<SessionView> StopSession(const Principal& p, const std::string& id);
  Status DeleteSession(const Principal& p, const std::string& id);
  Result<std::vector<Sample>> Results(const Principal& p, const std::string& id, int64_t since_ms,
                                      size_t limit);
  // Intervals that end after since_ms (closed ones, then the open one, flagged by the bool).
  Result<std::vector<std::pair<IntervalAggregate, bool>>> Intervals(const Principal& p,
                                                                    const std::string& id,
                                                                    int64_t since_ms, size_t limit);
  Result<SessionStats> Stats(const Principal& p, const std::string& id, int64_t since_ms);

  // ---- loss monitoring (alternate marking)
  Result<LossView> CreateLossSession(const Principal& p, const LossRequest& req);
  std::vector<LossView> LossSessions(const Principal& p);
  Result<LossView> GetLossSession(const Principal& p, const std::string& id);
  Status DeleteLossSession(const Principal& p, const std::string& id);
  Result<std::vector<LossPeriod>> LossPeriods(const Principal& p, const std::string& id, int64_t since_ms,
                                              size_t limit);

  Metrics GetMetrics();
  int32_t tai_offset_s() const { return tai_offset_s_; }

  // ---- the background work, callable directly by tests
  void PollOnce();  // delay results and loss counters of every edge, one after the other
  void CheckHeartbeats();
  void RunQueued();  // reconciles queued by registrations and enables
  // Converges one edge to the intent; false when it could not finish (retried with backoff).
  bool Reconcile(const std::string& device_id);

 private:
  struct DeviceRuntime {
    bool connected = false;
    std::string session_id;
    std::chrono::steady_clock::time_point last_heartbeat;
    int64_t last_seen_ms = 0;
  };
  struct SessionRuntime {
    DelaySession s;
    std::string error;  // last failure to put the session on its edges
  };

  Status Load();
  std::optional<Error> OverQuota(const std::string& tenant, const std::vector<std::string>& devices, bool slice) const;
  Result<Tenant> Owner(const Principal& p, const std::string& tenant_field);
  bool Visible(const Principal& p, const std::string& tenant_id) const {
    return p.is_operator || p.tenant_id == tenant_id;
  }
  // Devices of the slice's sites; refuses unknown or disabled devices and LAN interfaces
  // another slice holds.
  Result<std::map<std::string, Device>> CheckSites(const Principal& p, const Slice& s);
  Result<std::map<std::string, EdgeState>> PushSlice(const Slice& next,
                                                     const std::map<std::string, segwan::v1::Slice>& plan,
                                                     const Slice* prev, const std::map<std::string, Device>& devices);
  // Device records of the sites (locked: mu_).
  std::map<std::string, Device> DevicesOf(const Slice& s);
  std::shared_ptr<EdgeClient> ClientFor(const std::string& device_id);  // null: not reachable
  bool Reachable(const std::string& device_id);
  SliceView ViewOf(const Slice& s);
  SessionView ViewOf(const SessionRuntime& r) const;
  Status PushSession(const DelaySession& s, bool sender_side, bool reconciling);
  Result<SessionView> SetRunning(const Principal& p, const std::string& id, bool running);
  Status PushLoss(const LossSession& s);  // both ends; idempotent on the edges
  void PollLoss(const std::string& from);  // loss sessions whose flow starts at `from`
  std::set<std::string> PolledEdges();
  void PollEdge(const std::string& edge);
  void SchedulePolls();
  std::chrono::steady_clock::time_point NextReconcile();
  std::vector<std::string> DueReconciles();  // marks them running
  void FinishReconcile(const std::string& device_id, bool done);
  void ScheduleReconciles();
  // Serialises the configuration of one edge (REST changes, reconciles); never held with
  // another edge's and never taken under mu_.
  std::unique_lock<std::mutex> LockEdge(const std::string& device_id);
  // Marks a slice as being put in place by a REST call; reconciles leave it alone meanwhile.
  class InflightSlice {
   public:
    InflightSlice(Controller* c, std::string id) : c_(c), id_(std::move(id)) {
      std::lock_guard lock(c_->mu_);
      c_->inflight_slices_.insert(id_);
    }
    ~InflightSlice() {
      std::lock_guard lock(c_->mu_);
      c_->inflight_slices_.erase(id_);
    }
    InflightSlice(const InflightSlice&) = delete;
    InflightSlice& operator=(const InflightSlice&) = delete;

   private:
    Controller* c_;
    std::string id_;
  };
  // The SID list of a slice's flow from one device's site to another's (locked: mu_).
  Result<std::vector<std::string>> FlowSegments(const Slice& s, const std::string& from, const std::string& to,
                                                const std::string& family);
  segwan::v1::StampSessionParams SessionParams(const DelaySession& s, bool sender_side);
  void Enqueue(const std::string& device_id);
  void Loop();
  std::set<std::string> StreamedEdges();  // senders of delay sessions
  int64_t CloseGraceMs() const;

  Store* store_;
  EdgeConnector* edges_;
  ControllerOptions o_;
  std::string operator_token_;
  int32_t tai_offset_s_ = 0;
  std::optional<Error> load_error_;

  std::mutex config_mu_;  // serialises changes (REST writes, reconciles): held across edge calls
  std::mutex loss_write_mu_;  // a loss period's write and its session's deletion take turns

  mutable std::mutex mu_;  // guards everything below; never held across an edge call
  std::map<std::string, std::string> tenant_by_token_;  // token SHA-256 -> tenant id
  std::map<std::string, Device> devices_;
  std::map<std::string, DeviceRuntime> runtime_;
  std::map<std::string, Slice> slices_;
  std::map<std::string, std::map<std::string, EdgeState>> slice_edges_;
  std::map<std::string, SessionRuntime> sessions_;
  struct LossRuntime {
    LossSession s;
    LossCursor cursor;
    std::string error;
    std::optional<LossPeriod> last;
  };
  std::map<std::string, LossRuntime> loss_;
  struct ReconcileState {
    std::chrono::steady_clock::time_point next_at;
    std::chrono::milliseconds backoff{500};
    bool running = false;
    bool again = false;  // asked for while running
  };
  std::map<std::string, ReconcileState> reconcile_;
  std::set<std::string> polling_;          // edges with a poll in flight
  std::set<std::string> inflight_slices_;  // slices a REST call is pushing
  std::map<std::string, std::mutex> edge_mu_;
  std::atomic<uint64_t> loss_errors_{0};
  ResultIngest ingest_;   // samples, statistics, intervals and their writing
  std::unique_ptr<ResultStreams> streams_;  // notification mode, once started
  EdgeWorkers workers_;   // one thread per edge for its polls and reconciles
  std::mutex thread_mu_;  // guards stop_ and reconcile_kick_
  std::condition_variable cv_;
  bool stop_ = false;
  bool reconcile_kick_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace segwan::controller
