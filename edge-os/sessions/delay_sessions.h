#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/devices/registry.h"
#include "edge-os/monitoring/ingest.h"
#include "edge-os/monitoring/stats.h"
#include "edge-os/sessions/usage.h"
#include "edge-os/slices/slices.h"
#include "edge-os/southbound/edge_locks.h"
#include "edge-os/store/store.h"
#include "segwan/result.h"
#include "segwan/v1/edge.pb.h"

namespace segwan::controller {

struct SessionView {
  DelaySession session;
  SessionCounters counters;
  std::string error;  // last error talking to its edges, if any
};

// A delay session as the REST layer parses it.
struct SessionRequest {
  std::string tenant;  // operator only
  std::string slice;
  std::string sender, reflector;
  uint32_t interval_ms = 1000;
  TimestampFormat timestamp_format = TimestampFormat::kNtp;
  ReflectorMode reflector_mode = ReflectorMode::kStateless;
  EngineChoice engine = EngineChoice::kAuto;
  bool authenticated = false;
  bool follow_up_telemetry = false;  // RFC 8972 §4.7: return delay from the real transmit time
  bool start = true;
  // Steering's probes only (not from REST): see DelaySession.
  std::string steering, candidate;
  std::optional<std::vector<std::string>> waypoints;
};

// Stats of a session over a span: closed intervals from the store merged with the open one.
struct SessionStats {
  DelaySet delays;
  uint64_t samples = 0;
  uint64_t sent = 0, received = 0, lost = 0, lost_direct = 0, lost_return = 0;
  int64_t since_ms = 0;
  bool stateful = false;  // lost_direct/lost_return mean something
};

// STAMP delay sessions between two devices of a slice: their lifecycle on both edges (the
// reflector first, so the first test packet finds it), and their results as the ingest and
// the store keep them. No lock is held across an edge call. Thread-safe.
class DelaySessions {
 public:
  DelaySessions(Store* store, DeviceRegistry* devices, SliceService* slices, ResultIngest* ingest,
                EdgeLocks* locks, int32_t tai_offset_s)
      : store_(store), devices_(devices), slices_(slices), ingest_(ingest), locks_(locks), tai_offset_s_(tai_offset_s) {}
  Status Load();  // also restores the ingest's counters
  void SetQuota(QuotaCheck check) { quota_ = std::move(check); }

  Result<SessionView> Create(const Tenant& owner, const SessionRequest& req);
  std::vector<SessionView> List(const Principal& p);
  Result<SessionView> Get(const Principal& p, const std::string& id);
  Result<SessionView> SetRunning(const Principal& p, const std::string& id, bool running);
  // A steering probe goes with its policy only (`by_steering`).
  Status Delete(const Principal& p, const std::string& id, bool by_steering = false);
  Result<std::vector<Sample>> Results(const Principal& p, const std::string& id, int64_t since_ms, size_t limit);
  // Intervals that end after since_ms (closed ones, then the open one, flagged by the bool).
  Result<std::vector<std::pair<IntervalAggregate, bool>>> Intervals(const Principal& p, const std::string& id,
                                                                    int64_t since_ms, size_t limit);
  Result<SessionStats> Stats(const Principal& p, const std::string& id, int64_t since_ms);

  // Puts one side of a session on its edge: Init, Create, Start when running. When
  // reconciling, a session the edge already has is fine; one it had lost is created again
  // and its sequence numbers restart, so the counters carry on from where they were.
  Status Push(const DelaySession& s, bool sender_side, bool reconciling);
  std::vector<DelaySession> OfDevice(const std::string& device_id);  // either end, in place
  void SetError(const std::string& id, std::string error);
  std::vector<std::pair<std::string, uint32_t>> OfSender(const std::string& device_id);  // id, ssid
  std::set<std::string> Senders();
  std::vector<std::string> Ids();
  std::vector<DelaySession> Probes();  // steering's

  // For the slices, the devices and the shares.
  std::vector<std::string> OnSlice(const std::string& slice_id);
  std::optional<Error> CheckSliceChange(const Slice& next);  // each session keeps both its devices
  std::optional<std::string> UserOf(const std::string& device_id);
  void AddUsage(const std::string& tenant, SessionUsage* u);

 private:
  struct Entry {
    DelaySession s;
    std::string error;      // last failure to put the session on its edges
    bool creating = false;  // reserved: counted and blocking, not shown
    bool busy = false;      // being started, stopped or deleted
  };
  SessionView ViewOf(const Entry& e) const;
  Result<std::vector<std::pair<IntervalAggregate, bool>>> IntervalsOf(const std::string& id, int64_t since_ms,
                                                                      size_t limit);  // visibility checked
  Result<segwan::v1::StampSessionParams> Params(const DelaySession& s, bool sender_side);
  Result<DelaySession> Begin(const Principal& p, const std::string& id);  // marks it busy
  void End(const std::string& id);
  void Destroy(const DelaySession& s, bool sender_side);

  Store* store_;
  DeviceRegistry* devices_;
  SliceService* slices_;
  ResultIngest* ingest_;
  EdgeLocks* locks_;
  int32_t tai_offset_s_;
  QuotaCheck quota_;
  std::mutex mu_;
  std::map<std::string, Entry> sessions_;
  uint64_t reservations_ = 0;
};

}  // namespace segwan::controller
