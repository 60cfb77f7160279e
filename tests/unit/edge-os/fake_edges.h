#pragma once

// Edges in memory for controller tests that run without root or a lab: each fake keeps what
// it was told (slices, STAMP sessions), logs every call, and can be told to fail a method.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "edge-os/southbound/edge_client.h"
#include "segwan/v1/registration.pb.h"

namespace segwan::controller::testing {

namespace pb = segwan::v1;

class FakeEdge : public EdgeClient {
 public:
  explicit FakeEdge(std::string id) : id_(std::move(id)) {}

  Result<pb::ApplySliceResponse> ApplySlice(const pb::Slice& s) override {
    if (auto e = Fail("ApplySlice:" + s.id())) return *e;
    std::lock_guard l(mu_);
    slices[s.id()] = s;
    return pb::ApplySliceResponse{};
  }
  Status RemoveSlice(const std::string& id) override {
    if (auto e = Fail("RemoveSlice:" + id)) return *e;
    std::lock_guard l(mu_);
    slices.erase(id);
    return Status::Ok();
  }
  Result<pb::GetStateResponse> GetState() override {
    if (auto e = Fail("GetState:")) return *e;
    std::lock_guard l(mu_);
    pb::GetStateResponse r;
    for (const auto& [id, s] : slices) *r.add_slices() = s;
    return r;
  }
  Status Init(pb::StampRole role, const std::string& address) override {
    if (auto e = Fail("Init:" + Role(role))) return *e;
    std::lock_guard l(mu_);
    init_address[role] = address;
    return Status::Ok();
  }
  Status CreateStampSession(pb::StampRole role, const pb::StampSessionParams& p) override {
    if (auto e = Fail("Create:" + Role(role))) return *e;
    std::lock_guard l(mu_);
    auto key = std::make_pair(role, p.ssid());
    if (sessions.count(key)) return Error{id_ + ": session exists", "", kGrpcAlreadyExists};
    sessions[key] = p;
    return Status::Ok();
  }
  Status StartStampSession(pb::StampRole role, uint32_t ssid) override { return Flag(role, ssid, "Start", true); }
  Status StopStampSession(pb::StampRole role, uint32_t ssid) override { return Flag(role, ssid, "Stop", false); }
  Status DestroyStampSession(pb::StampRole role, uint32_t ssid) override {
    if (auto e = Fail("Destroy:" + Role(role))) return *e;
    std::lock_guard l(mu_);
    Log("Destroy:" + Role(role) + ":" + std::to_string(ssid));
    if (!sessions.erase({role, ssid})) return Error{id_ + ": no session", "", kGrpcNotFound};
    running.erase({role, ssid});
    return Status::Ok();
  }
  Result<pb::GetStampSessionResultsResponse> GetStampSessionResults(uint32_t ssid) override {
    if (auto e = Fail("Results:")) return *e;
    std::lock_guard l(mu_);
    pb::GetStampSessionResultsResponse r;
    auto& q = pending[ssid];
    for (const auto& x : q) *r.add_results() = x;
    q.clear();
    r.set_running(running.count({pb::STAMP_ROLE_SENDER, ssid}) > 0);
    return r;
  }

  // Notification mode as the agent does it: records pushed by the test move into a log with
  // cursors; a stream sends what is after its resume point and forgets what is acknowledged.
  std::shared_ptr<ResultStream> WatchStampResults(uint64_t log_id, uint64_t cursor,
                                                  ResultStream::Handler h) override;

  Status StartLossMonitoring(const std::vector<std::string>& segs, pb::LossDirection d, uint32_t period_ms) override {
    if (auto e = Fail("StartLoss:" + Dir(d))) return *e;
    std::lock_guard l(mu_);
    auto& f = loss[{segs, d}];
    f.period_ms = period_ms;
    return Status::Ok();
  }
  Status StopLossMonitoring(const std::vector<std::string>& segs, pb::LossDirection d) override {
    if (auto e = Fail("StopLoss:" + Dir(d))) return *e;
    std::lock_guard l(mu_);
    if (!loss.erase({segs, d})) return Error{id_ + ": flow not monitored", "", kGrpcNotFound};
    return Status::Ok();
  }
  Result<pb::ReadLossCountersResponse> ReadLossCounters(const std::vector<std::string>& segs,
                                                        pb::LossDirection d) override {
    if (auto e = Fail("ReadLoss:" + Dir(d))) return *e;
    std::lock_guard l(mu_);
    auto it = loss.find({segs, d});
    if (it == loss.end()) return Error{id_ + ": flow not monitored", "", kGrpcNotFound};
    pb::ReadLossCountersResponse r;
    for (uint32_t c = 0; c < 2; ++c) {
      auto* x = r.add_counters();
      x->set_colour(c);
      x->set_packets(it->second.packets[c]);
      x->set_bytes(it->second.packets[c] * 100);
    }
    r.set_active_colour(it->second.colour);
    r.set_colour_switched_at_ns(it->second.switched_at_ns);
    r.set_period_index(it->second.period_index);
    return r;
  }

  // A monitored flow as the fake keeps it; tests move its counters and colour by hand.
  struct LossFlow {
    uint32_t period_ms = 0;
    uint64_t packets[2] = {};
    uint32_t colour = 0;
    uint64_t switched_at_ns = 0;
    uint64_t period_index = 0;
  };
  std::map<std::pair<std::vector<std::string>, pb::LossDirection>, LossFlow> loss;

  // Runs f on the monitored flows, under the fake's lock (for a thread that moves counters
  // while the controller reads them).
  template <typename F>
  void WithLoss(F f) {
    std::lock_guard l(mu_);
    f(loss);
  }

  // test controls
  // Ends the open result streams as a broken connection would.
  void BreakStreams() {
    std::lock_guard l(mu_);
    ++stream_epoch_;
  }
  // The agent restarted: a new, empty result log.
  void NewLog() {
    std::lock_guard l(mu_);
    log_.clear();
    log_id_ += 1;
    next_cursor_ = 1;
    ++stream_epoch_;
  }
  uint64_t log_id() {
    std::lock_guard l(mu_);
    return log_id_;
  }
  uint64_t acked() {
    std::lock_guard l(mu_);
    return acked_;
  }
  void FailWith(const std::string& what, int grpc_code) {
    std::lock_guard l(mu_);
    fail_[what] = grpc_code;
  }
  // A frozen edge (SIGSTOP): every call waits until it thaws.
  void Freeze() {
    std::lock_guard f(freeze_mu_);
    frozen_ = true;
  }
  void Thaw() {
    std::lock_guard f(freeze_mu_);
    frozen_ = false;
    freeze_cv_.notify_all();
  }
  // Waits until a call is held by the freeze.
  bool WaitStuck(std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    std::unique_lock f(freeze_mu_);
    return freeze_cv_.wait_for(f, limit, [&] { return frozen_ && stuck_ > 0; });
  }
  void ClearFailures() {
    std::lock_guard l(mu_);
    fail_.clear();
  }
  void Push(uint32_t ssid, const pb::StampResult& r) {
    std::lock_guard l(mu_);
    pending[ssid].push_back(r);
  }
  // SSIDs of the sender sessions running here.
  std::vector<uint32_t> RunningSenders() {
    std::lock_guard l(mu_);
    std::vector<uint32_t> out;
    for (const auto& [role, ssid] : running) {
      if (role == pb::STAMP_ROLE_SENDER) out.push_back(ssid);
    }
    return out;
  }
  std::vector<std::string> Calls() {
    std::lock_guard l(mu_);
    return calls_;
  }
  void Forget() {  // an agent restarted with nothing
    std::lock_guard l(mu_);
    slices.clear();
    sessions.clear();
    running.clear();
  }

  std::map<std::string, pb::Slice> slices;
  std::map<pb::StampRole, std::string> init_address;
  std::map<std::pair<pb::StampRole, uint32_t>, pb::StampSessionParams> sessions;
  std::set<std::pair<pb::StampRole, uint32_t>> running;
  std::map<uint32_t, std::vector<pb::StampResult>> pending;

 private:
  static std::string Role(pb::StampRole r) { return r == pb::STAMP_ROLE_SENDER ? "sender" : "reflector"; }
  static std::string Dir(pb::LossDirection d) { return d == pb::LOSS_DIRECTION_INGRESS ? "ingress" : "egress"; }
  void Log(const std::string& c) { calls_.push_back(c); }
  std::optional<Error> Fail(const std::string& what) {
    {
      std::unique_lock f(freeze_mu_);
      ++stuck_;
      freeze_cv_.notify_all();
      freeze_cv_.wait(f, [&] { return !frozen_; });
      --stuck_;
    }
    std::lock_guard l(mu_);
    Log(what);
    for (const auto& [k, code] : fail_) {
      if (what.rfind(k, 0) == 0) return Error{id_ + ": told to fail " + k, "", code};
    }
    return std::nullopt;
  }
  Status Flag(pb::StampRole role, uint32_t ssid, const std::string& what, bool on) {
    if (auto e = Fail(what + ":" + Role(role))) return *e;
    std::lock_guard l(mu_);
    if (!sessions.count({role, ssid})) return Error{id_ + ": no session", "", kGrpcNotFound};
    if (on) running.insert({role, ssid});
    else running.erase({role, ssid});
    return Status::Ok();
  }

  friend class FakeResultStream;
  std::mutex freeze_mu_;
  std::condition_variable freeze_cv_;
  bool frozen_ = false;
  int stuck_ = 0;  // calls waiting (or passing) at the freeze
  std::string id_;
  std::recursive_mutex mu_;
  std::map<std::string, int> fail_;
  std::vector<std::string> calls_;
  std::vector<pb::StampResult> log_;  // cursor order, acknowledged ones removed
  uint64_t log_id_ = 1000, next_cursor_ = 1, acked_ = 0, stream_epoch_ = 0;
};

// Delivers a batch every 20 ms on a thread of its own until cancelled, broken (BreakStreams)
// or failing from the start (FailWith("Watch:", code)); then `done`.
class FakeResultStream : public ResultStream, public std::enable_shared_from_this<FakeResultStream> {
 public:
  FakeResultStream(FakeEdge* e, uint64_t log_id, uint64_t cursor, Handler h, int fail_code = 0)
      : e_(e), h_(std::move(h)), fail_code_(fail_code) {
    std::lock_guard l(e_->mu_);
    epoch_ = e_->stream_epoch_;
    if (log_id == e_->log_id_) {
      Forget(cursor);
      sent_ = cursor;
    }
  }
  void Start() {
    std::thread([self = shared_from_this()] {
      pb::StampResultBatch b;
      while (self->Next(&b)) self->h_.batch(b);
      self->h_.done(Error{"stream broken", "", self->fail_code_ ? self->fail_code_ : kGrpcUnavailable});
    }).detach();
  }
  void Ack(uint64_t log_id, uint64_t cursor) override {
    std::lock_guard l(e_->mu_);
    if (log_id == e_->log_id_) Forget(cursor);
  }
  void Cancel() override { cancelled_ = true; }

 private:
  bool Next(pb::StampResultBatch* b) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard l(e_->mu_);
    if (fail_code_ || cancelled_ || epoch_ != e_->stream_epoch_) return false;
    for (auto& [ssid, q] : e_->pending) {
      for (auto r : q) {
        r.set_cursor(e_->next_cursor_++);
        e_->log_.push_back(r);
      }
      q.clear();
    }
    b->Clear();
    b->set_log_id(e_->log_id_);
    for (const auto& r : e_->log_) {
      if (r.cursor() > sent_ && b->results_size() < 256) *b->add_results() = r;
    }
    if (b->results_size()) sent_ = b->results(b->results_size() - 1).cursor();
    for (const auto& [role, ssid] : e_->running) {
      if (role != pb::STAMP_ROLE_SENDER) continue;
      auto* st = b->add_senders();
      st->set_ssid(ssid);
      st->set_running(true);
    }
    return true;
  }
  void Forget(uint64_t cursor) {
    e_->acked_ = std::max(e_->acked_, cursor);
    std::erase_if(e_->log_, [&](const pb::StampResult& r) { return r.cursor() <= cursor; });
  }
  FakeEdge* e_;
  Handler h_;
  uint64_t sent_ = 0, epoch_ = 0;
  std::atomic<bool> cancelled_{false};
  int fail_code_;
};

inline std::shared_ptr<ResultStream> FakeEdge::WatchStampResults(uint64_t log_id, uint64_t cursor,
                                                                 ResultStream::Handler h) {
  auto e = Fail("Watch:");
  auto s = std::make_shared<FakeResultStream>(this, log_id, cursor, std::move(h), e ? e->code : 0);
  s->Start();
  return s;
}

class FakeConnector : public EdgeConnector {
 public:
  std::shared_ptr<EdgeClient> Connect(const std::string& id, const std::string&) override { return Edge(id); }
  std::shared_ptr<FakeEdge> Edge(const std::string& id) {
    std::lock_guard l(mu_);
    auto& e = edges_[id];
    if (!e) e = std::make_shared<FakeEdge>(id);
    return e;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<FakeEdge>> edges_;
};

// A registration like the lab's edge-X sends: lan0 with 10.10.N.1/24 and fd10:X::1/64, lo with
// the locator's ::1, wan1.
inline pb::RegisterDeviceRequest LabRegistration(const std::string& x, const std::string& token,
                                                 const std::string& mode = "table") {
  const int n = x == "a" ? 1 : x == "b" ? 2 : 3;
  pb::RegisterDeviceRequest r;
  r.set_device_id("edge-" + x);
  r.set_token(token);
  r.set_grpc_address("[fd5e:ff::" + x + "]:50061");
  r.set_locator("fc00:0:" + x + "::/48");
  r.set_slice_mode(mode == "vrf" ? pb::SLICE_MODE_VRF : pb::SLICE_MODE_TABLE);
  r.add_capabilities("seg6");
  r.add_capabilities("loss");
  auto* lo = r.add_interfaces();
  lo->set_name("lo");
  lo->add_addresses("127.0.0.1/8");
  lo->add_addresses("fc00:0:" + x + "::1/128");
  auto* lan = r.add_interfaces();
  lan->set_name("lan0");
  lan->set_role("lan");
  lan->add_addresses("10.10." + std::to_string(n) + ".1/24");
  lan->add_addresses("fd10:" + x + "::1/64");
  lan->add_addresses("fe80::1/64");
  auto* wan = r.add_interfaces();
  wan->set_name("wan1");
  wan->set_role("wan");
  wan->add_addresses("fd5e:0:" + x + "1::1/64");
  return r;
}

}  // namespace segwan::controller::testing
