#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/devices/registry.h"
#include "edge-os/sessions/usage.h"
#include "edge-os/slices/slices.h"
#include "edge-os/southbound/edge_locks.h"
#include "edge-os/store/store.h"
#include "segwan/result.h"

namespace segwan::controller {

// A loss session as the REST layer parses it.
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

// Loss monitoring of a slice's flows by alternate marking: the colouring at the ingress edge,
// the counting at both ends, and the periods closed from their counters (loss_periods.h).
// No lock is held across an edge call. Thread-safe.
class LossSessions {
 public:
  LossSessions(Store* store, DeviceRegistry* devices, SliceService* slices, EdgeLocks* locks, int32_t tai_offset_s)
      : store_(store), devices_(devices), slices_(slices), locks_(locks), tai_offset_s_(tai_offset_s) {}
  Status Load();
  void SetQuota(QuotaCheck check) { quota_ = std::move(check); }

  Result<LossView> Create(const Tenant& owner, const LossRequest& req);
  std::vector<LossView> List(const Principal& p);
  Result<LossView> Get(const Principal& p, const std::string& id);
  Status Delete(const Principal& p, const std::string& id);
  Result<std::vector<LossPeriod>> Periods(const Principal& p, const std::string& id, int64_t since_ms, size_t limit);

  // Reads the counters of the flows coloured at `from` and closes the periods that are due.
  void Poll(const std::string& from);
  Status Push(const LossSession& s);  // both ends; idempotent on the edges
  std::vector<LossSession> OfDevice(const std::string& device_id);  // either end, in place
  void SetError(const std::string& id, std::string error);
  std::set<std::string> Ingresses();  // the edges polled for loss
  // Besides the regular polls, each ingress is read when its soonest period can be closed
  // (half a period after the switch that ends it): the time of the soonest, and the ingresses
  // due by `now` (taken: Poll sets the next).
  std::chrono::steady_clock::time_point NextDue();
  void SetWake(std::function<void()> wake) { wake_ = std::move(wake); }  // called when a due time is set
  std::set<std::string> TakeDue(std::chrono::steady_clock::time_point now);
  uint64_t errors() const { return errors_; }

  // For the slices, the devices and the shares.
  std::vector<std::string> OnSlice(const std::string& slice_id);
  // A slice change may not move a monitored flow's SID list (its counters are keyed by it on
  // both edges); SLA steering may: the session follows the flow (FollowPath).
  std::optional<Error> CheckSliceChange(const Slice& next);
  std::optional<std::string> UserOf(const std::string& device_id);
  void AddUsage(const std::string& tenant, SessionUsage* u);

 private:
  struct Entry {
    LossSession s;
    LossCursor cursor;
    std::string error;
    std::optional<LossPeriod> last;
    bool creating = false;
    bool busy = false;  // being deleted
  };
  void Stop(const LossSession& s, bool ingress);
  // Moves the monitoring to the SID list the flow takes now (see the definition); false when
  // this poll should leave the session alone.
  bool FollowPath(Entry& job);

  Store* store_;
  DeviceRegistry* devices_;
  SliceService* slices_;
  EdgeLocks* locks_;
  int32_t tai_offset_s_;
  QuotaCheck quota_;
  std::mutex write_mu_;  // a period's write and its session's deletion take turns
  std::mutex mu_;
  std::map<std::string, Entry> loss_;
  std::map<std::string, std::chrono::steady_clock::time_point> due_;  // per ingress
  std::function<void()> wake_;
  uint64_t reservations_ = 0;
  std::atomic<uint64_t> errors_{0};
};

}  // namespace segwan::controller
