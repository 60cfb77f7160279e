#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/devices/registry.h"
#include "edge-os/southbound/edge_locks.h"
#include "edge-os/store/store.h"
#include "segwan/result.h"
#include "segwan/v1/edge.pb.h"

namespace segwan::controller {

// Where a slice stands on one of its edges.
struct EdgeState {
  std::string state;  // "applied", "pending" (edge not reachable or disabled), "error"
  std::string error;
};
struct SliceView {
  Slice slice;
  std::map<std::string, EdgeState> edges;
};

// A slice as the REST layer parses it.
struct SliceRequest {
  std::string tenant;  // operator only: on whose behalf
  std::string name;
  std::vector<SliceSite> sites;
  std::vector<SlicePath> paths;
};

// What a slice needs to know of the sessions measuring it. Called with no lock held.
struct SliceHooks {
  // A conflict error when the sessions on `prev` cannot follow it to `next` (null: deletion).
  std::function<std::optional<Error>(const Slice& prev, const Slice* next)> users;
  // The paths SLA steering chose for the slice's steered directions (they replace the
  // slice's own for those directions).
  std::function<std::vector<SlicePath>(const std::string& slice_id)> steered;
};

// Edges whose slices one reconcile converges: what it should have, and the slices it must
// leave alone because a REST call is putting them in place.
struct SlicesOfEdge {
  std::vector<Slice> wanted;
  std::set<std::string> busy;
};

// Tenants' slices: validation (sites, interfaces, quota), planning, and the push to the edges
// with rollback, so a refused request changes nothing. No lock is held across an edge call:
// a slice being created or changed is marked, and the marks keep concurrent requests from
// claiming the same interfaces or changing the same slice. Thread-safe.
class SliceService {
 public:
  SliceService(Store* store, DeviceRegistry* devices, EdgeLocks* locks, size_t max_per_tenant)
      : store_(store), devices_(devices), locks_(locks), max_per_tenant_(max_per_tenant) {}
  Status Load();
  void SetHooks(SliceHooks hooks) { hooks_ = std::move(hooks); }

  Result<SliceView> Create(const Principal& p, const Tenant& owner, const SliceRequest& req);
  // Replaces name, sites and paths; id, number and tenant stay. Edges that leave lose the
  // slice, edges that join get it, the others converge to the new plan.
  Result<SliceView> Update(const Principal& p, const std::string& id, const SliceRequest& req);
  Status Delete(const Principal& p, const std::string& id);
  std::vector<SliceView> List(const Principal& p);
  Result<SliceView> Get(const Principal& p, const std::string& id);

  // A slice of `tenant` a new session may measure: 404 when there is none (or another
  // tenant's), 409 while it is being changed.
  Result<Slice> ForNewSession(const std::string& tenant, const std::string& id);
  std::optional<Slice> Find(const std::string& id);  // any live slice
  // The slice as the edges carry it: its paths with steering's choices in place.
  Slice Effective(const Slice& s);
  // Puts the slice as it is now on one edge (a steering switch: the edge replaces its routes,
  // make-before-break). Not found: the slice is gone; the edge's error otherwise.
  Status Reapply(const std::string& slice_id, const std::string& device_id);
  // The SID list of a slice's flow from one device's site to another's.
  Result<std::vector<std::string>> FlowSegments(const Slice& s, const std::string& from, const std::string& to,
                                                const std::string& family);
  // For the reconciler.
  SlicesOfEdge OfEdge(const std::string& device_id);
  void SetEdgeState(const std::string& slice_id, const std::string& device_id, EdgeState state);
  std::optional<std::string> UserOf(const std::string& device_id);  // a slice with a site on it

 private:
  struct Entry {
    Slice s;
    std::map<std::string, EdgeState> edges;
    bool creating = false;       // not yet in place: invisible, but its interfaces are taken
    bool busy = false;           // being changed or deleted
    std::optional<Slice> next;   // the change in flight: its interfaces are taken too
  };
  // Refuses unknown or disabled devices and interfaces another slice holds (locked: mu_).
  Result<std::map<std::string, Device>> CheckSites(const Principal& p, const Slice& s);
  std::map<std::string, Device> DevicesOf(const Slice& s);
  Result<std::map<std::string, EdgeState>> Push(const Slice& next,
                                                const std::map<std::string, segwan::v1::Slice>& plan,
                                                const Slice* prev, const std::map<std::string, Device>& devices);
  void Release(const std::string& id);  // ends a mark: busy off, a creation forgotten

  Store* store_;
  DeviceRegistry* devices_;
  EdgeLocks* locks_;
  size_t max_per_tenant_;
  SliceHooks hooks_;
  std::mutex mu_;
  std::map<std::string, Entry> slices_;
};

}  // namespace segwan::controller
