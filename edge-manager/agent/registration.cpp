#include "edge-manager/agent/registration.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <random>
#include <sstream>

#include "segwan/files.h"
#include "segwan/log.h"

namespace segwan::edge {

namespace pb = segwan::v1;

Registrar::Registrar(std::shared_ptr<grpc::Channel> channel, RegistrationInfo info,
                     RegistrationTiming timing)
    : Registrar(std::vector<std::shared_ptr<grpc::Channel>>{std::move(channel)}, std::move(info), timing) {}

Registrar::Registrar(std::vector<std::shared_ptr<grpc::Channel>> channels, RegistrationInfo info,
                     RegistrationTiming timing)
    : info_(std::move(info)), timing_(timing), heartbeat_(timing.default_heartbeat) {
  for (auto& c : channels) stubs_.push_back(pb::Registration::NewStub(std::move(c)));
}

Registrar::~Registrar() { Stop(); }

void Registrar::Start() { thread_ = std::thread([this] { Run(); }); }

void Registrar::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  State s = state();
  if (s.registered) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    pb::UnregisterRequest req;
    req.set_device_id(info_.device_id);
    req.set_session_id(s.session_id);
    pb::UnregisterResponse resp;
    stubs_[s.controller]->Unregister(&ctx, req, &resp);
    std::lock_guard lock(mu_);
    state_.registered = false;
  }
}

Registrar::State Registrar::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

bool Registrar::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stop_; });
}

bool Registrar::Register() {
  const size_t first = state().controller;
  for (size_t i = 0; i < stubs_.size(); ++i) {
    const size_t k = (first + i) % stubs_.size();
    if (RegisterWith(k)) return true;
    {
      std::lock_guard lock(mu_);
      if (stop_) return false;
    }
  }
  return false;
}

bool Registrar::RegisterWith(size_t k) {
  pb::RegisterDeviceRequest req;
  req.set_device_id(info_.device_id);
  req.set_token(ReadFirstLine(info_.token_file).value_or(""));
  req.set_grpc_address(info_.grpc_address);
  for (const auto& c : info_.capabilities) req.add_capabilities(c);
  req.set_slice_mode(info_.slice_mode);
  req.set_locator(info_.locator);
  req.set_version(info_.version);
  if (info_.interfaces) {
    for (auto& i : info_.interfaces()) *req.add_interfaces() = std::move(i);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timing_.call_deadline);
  pb::RegisterDeviceResponse resp;
  const grpc::Status st = stubs_[k]->RegisterDevice(&ctx, req, &resp);
  std::lock_guard lock(mu_);
  if (!st.ok()) {
    std::string err = st.error_message().empty() ? "code " + std::to_string(st.error_code()) : st.error_message();
    if (stubs_.size() > 1) err = "controller " + std::to_string(k + 1) + " of " + std::to_string(stubs_.size()) + ": " + err;
    if (err != state_.last_error) {  // say it once, not at every retry
      SEGWAN_LOG(kWarn, "registration") << "cannot register with the controller: " << err;
    }
    state_.last_error = err;
    return false;
  }
  state_.registered = true;
  state_.controller = k;
  state_.enabled = resp.enabled();
  state_.session_id = resp.session_id();
  state_.last_error.clear();
  ++state_.registrations;
  if (info_.leader_epoch && resp.leader_epoch() > 0) info_.leader_epoch(resp.leader_epoch());
  heartbeat_ = resp.heartbeat_interval_ms() > 0
                   ? std::chrono::milliseconds(resp.heartbeat_interval_ms())
                   : timing_.default_heartbeat;
  SEGWAN_LOG(kInfo, "registration") << "registered as " << info_.device_id << " ("
                                    << (resp.enabled() ? "enabled" : "waiting to be enabled")
                                    << "), heartbeat every " << heartbeat_.count() << " ms";
  return true;
}

bool Registrar::Heartbeat() {
  pb::HeartbeatRequest req;
  req.set_device_id(info_.device_id);
  size_t k = 0;
  {
    std::lock_guard lock(mu_);
    req.set_session_id(state_.session_id);
    k = state_.controller;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timing_.call_deadline);
  pb::HeartbeatResponse resp;
  const grpc::Status st = stubs_[k]->Heartbeat(&ctx, req, &resp);
  if (st.ok() && !resp.reregister()) return true;
  std::lock_guard lock(mu_);
  state_.registered = false;
  SEGWAN_LOG(kWarn, "registration") << (st.ok() ? "the controller asked to register again"
                                                : "heartbeat failed: " + st.error_message());
  return false;
}

void Registrar::Run() {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  auto backoff = timing_.first_backoff;
  while (true) {
    if (!state().registered) {
      if (Register()) {
        backoff = timing_.first_backoff;
        continue;
      }
      const auto wait = std::chrono::milliseconds(static_cast<int64_t>(backoff.count() * jitter(rng)));
      if (!Sleep(wait)) return;
      // Several controllers: a failover takes seconds, and a round of refusals costs little.
      const auto cap = stubs_.size() > 1 ? std::min(timing_.max_backoff, std::chrono::milliseconds(1000))
                                         : timing_.max_backoff;
      backoff = std::min(backoff * 2, cap);
      continue;
    }
    if (!Sleep(heartbeat_)) return;
    Heartbeat();
  }
}

}  // namespace segwan::edge
