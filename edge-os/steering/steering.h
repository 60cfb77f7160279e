#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/devices/registry.h"
#include "edge-os/monitoring/stats.h"
#include "edge-os/sessions/delay_sessions.h"
#include "edge-os/slices/slices.h"
#include "edge-os/steering/judge.h"
#include "edge-os/store/store.h"
#include "segwan/clock.h"
#include "segwan/result.h"

namespace segwan::controller {

struct SlaRequest {
  std::string tenant;  // operator only
  std::string name;
  SlaLimits limits;
};

struct PolicyRequest {
  std::string tenant;  // operator only
  std::string slice, sla;
  std::vector<SteeringPair> pairs;            // empty: every ordered pair of the slice's devices
  std::vector<SteeringCandidate> candidates;  // empty: the slice's path, the underlay's, one per core
  ProbeProfile probe;
};

struct CandidateView {
  SteeringCandidate candidate;
  std::string session_id;  // its probe delay session
  std::optional<WindowMeasure> last;
  bool complies = false;
};
struct DirectionView {
  std::string from, to;
  std::string active;
  int64_t since_ms = 0;  // when traffic moved to it (0: since the policy began)
  bool violated = false;
  std::vector<CandidateView> candidates;
};
struct PolicyView {
  SteeringPolicy policy;
  std::vector<DirectionView> directions;
};

struct SteeringMetrics {
  struct Direction {
    std::string policy, tenant, from, to, active;
    std::vector<std::string> candidates;
    uint64_t switches = 0;
  };
  std::vector<Direction> directions;
};

// SLA steering: SLA classes, the policies that attach one to a slice's directions, a probe
// delay session on every candidate path of every steered direction, their windows judged
// against the SLA, and the switch of a direction's traffic (the ingress edge's H.Encaps route
// replaced, make-before-break) with every violation, clearance and switch kept as an event.
// The choices are stored: a restarted controller puts the same paths back, without a flap.
// No lock is held across an edge call or a call into another service. Thread-safe.
class SteeringService {
 public:
  struct Options {
    std::vector<SteeringCandidate> cores;  // the operator's core SIDs: one candidate each
    int64_t grace_ms = 400;                // a window is judged this long after its end
    int32_t tai_offset_s = 0;
  };
  // What the service asks of the rest of the controller; called with no lock held.
  struct Hooks {
    std::function<void(const std::string& device, std::function<void()>)> on_edge;  // run on the edge's worker
    std::function<void(const std::string& device)> converge;  // reconcile an edge a switch could not reach
    std::function<void(const SteeringEvent&)> alert;           // violations, no_compliant and clearances
  };
  SteeringService(Store* store, DeviceRegistry* devices, SliceService* slices, DelaySessions* sessions, Options o)
      : store_(store), devices_(devices), slices_(slices), sessions_(sessions), o_(std::move(o)) {}
  Status Load();
  void SetHooks(Hooks h) { hooks_ = std::move(h); }

  Result<SlaClass> CreateSla(const Tenant& owner, const SlaRequest& req);
  std::vector<SlaClass> Slas(const Principal& p);
  Result<SlaClass> GetSla(const Principal& p, const std::string& id);
  Status DeleteSla(const Principal& p, const std::string& id);

  Result<PolicyView> CreatePolicy(const Tenant& owner, const PolicyRequest& req);
  std::vector<PolicyView> Policies(const Principal& p);
  Result<PolicyView> GetPolicy(const Principal& p, const std::string& id);
  Status DeletePolicy(const Principal& p, const std::string& id);
  Result<std::vector<SteeringEvent>> Events(const Principal& p, const std::string& slice, int64_t before_id,
                                            size_t limit);

  // For the slices: steering's paths, and whether a change of a slice strands a policy.
  std::vector<SlicePath> Steered(const std::string& slice_id);
  std::optional<Error> CheckSlice(const Slice& prev, const Slice* next);
  // Probes' samples as the ingest takes them.
  void Tap(const std::string& session_id, const std::vector<Sample>& samples);
  // Judges the windows that ended grace_ms before `now_ms` (UTC) and acts on them.
  void Tick(int64_t now_ms);
  SteeringMetrics Metrics();

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // policy, from, to
  struct Direction {
    DirectionJudge judge;
    int64_t since_ms = 0;  // when traffic last moved (0: never); the active path is the judge's
    uint64_t switches = 0;
  };
  struct Probe {
    Key key;
    std::string candidate;
    ProbeWindows windows;
  };
  struct Entry {
    SteeringPolicy policy;
    std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> sessions;  // pair -> candidate -> session id
    bool creating = false;
    bool busy = false;
  };
  std::vector<SteeringCandidate> Candidates(const Slice& s, const std::string& from, const std::string& to,
                                            const std::vector<SteeringCandidate>& asked) const;
  void Track(const Entry& e, const std::vector<SteeringChoice>& choices, const SlaLimits& limits);  // locked: mu_
  PolicyView ViewOf(const Entry& e);  // locked: mu_
  void Apply(const std::string& slice_id, const std::string& from);
  void Discard(const std::vector<std::string>& session_ids);

  Store* store_;
  DeviceRegistry* devices_;
  SliceService* slices_;
  DelaySessions* sessions_;
  Options o_;
  Hooks hooks_;
  std::mutex mu_;
  std::map<std::string, SlaClass> slas_;
  std::map<std::string, Entry> policies_;
  std::map<Key, Direction> directions_;
  std::map<std::string, Probe> probes_;  // by probe session id
};

}  // namespace segwan::controller
