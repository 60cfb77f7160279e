#include "edge-os/controller/reconciler.h"

#include <regex>

#include "edge-os/controller/errors.h"
#include "edge-os/slices/planner.h"
#include "segwan/log.h"

namespace segwan::controller {

void Reconciler::Enqueue(const std::string& device_id) {
  {
    std::lock_guard lock(mu_);
    auto& r = due_[device_id];
    if (r.running) r.again = true;
    r.next_at = std::chrono::steady_clock::now();
    r.backoff = std::chrono::milliseconds(500);
  }
  if (kick_) kick_();
}

std::chrono::steady_clock::time_point Reconciler::Next() {
  std::lock_guard lock(mu_);
  auto next = std::chrono::steady_clock::time_point::max();
  for (const auto& [id, r] : due_) {
    if (!r.running) next = std::min(next, r.next_at);
  }
  return next;
}

std::vector<std::string> Reconciler::Due() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (auto& [id, r] : due_) {
    if (!r.running && r.next_at <= now) {
      r.running = true;
      out.push_back(id);
    }
  }
  return out;
}

void Reconciler::Finish(const std::string& device_id, bool done) {
  {
    std::lock_guard lock(mu_);
    auto it = due_.find(device_id);
    if (it == due_.end()) return;
    it->second.running = false;
    if (done && !it->second.again) {
      due_.erase(it);
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
  if (kick_) kick_();
}

bool Reconciler::Run(const std::string& device_id) {
  // No controller-wide lock: only this edge's, which REST changes to this edge take too.
  auto edge_lock = locks_->Lock(device_id);
  if (!devices_->Reachable(device_id)) return true;  // a disconnected edge is reconciled when it registers
  auto client = devices_->Client(device_id);
  auto state = client->GetState();
  if (!state) {
    SEGWAN_LOG(kWarn, "reconcile") << device_id << ": " << state.error().message << " (will retry)";
    return false;
  }
  bool done = true;
  const auto slices = slices_->OfEdge(device_id);
  const auto devices = devices_->All();
  int applied = 0, removed = 0, pushed = 0;
  static const std::regex kOurs("^sl[0-9]+$");
  for (const auto& have : state->slices()) {
    const bool keep = std::any_of(slices.wanted.begin(), slices.wanted.end(), [&](const auto& s) { return s.id == have.id(); });
    // A slice a REST call is putting in place right now is that call's to finish.
    if (!keep && !slices.busy.count(have.id()) && std::regex_match(have.id(), kOurs)) {
      if (client->RemoveSlice(have.id())) ++removed;
      else done = false;
    }
  }
  for (const auto& s : slices.wanted) {
    auto plan = PlanSlice(slices_->Effective(s), devices);
    EdgeState es{"applied", ""};
    if (!plan) {
      es = {"error", plan.error().ToString()};
    } else if (auto r = client->ApplySlice(plan->at(device_id)); !r) {
      es = {Refused(r.error()) ? "error" : "pending", r.error().message};
      if (!Refused(r.error())) done = false;
    } else {
      ++applied;
    }
    slices_->SetEdgeState(s.id, device_id, es);
  }
  for (const auto& s : sessions_->OfDevice(device_id)) {  // each involves this device as sender or reflector
    std::string err;
    if (s.reflector == device_id) {
      if (auto st = sessions_->Push(s, false, true); !st) err = st.error().message;
    }
    if (s.sender == device_id && err.empty()) {
      if (auto st = sessions_->Push(s, true, true); !st) err = st.error().message;
    }
    if (err.empty()) ++pushed;
    else done = false;
    sessions_->SetError(s.id, err);
  }
  for (const auto& l : loss_->OfDevice(device_id)) {
    const auto st = loss_->Push(l);
    if (!st) done = false;
    loss_->SetError(l.id, st ? "" : st.error().message);
  }
  SEGWAN_LOG(kInfo, "reconcile") << device_id << ": " << applied << " slice(s) applied, " << removed
                                 << " stale removed, " << pushed << " delay session side(s) in place"
                                 << (done ? "" : "; not complete, will retry");
  return done;
}

}  // namespace segwan::controller
