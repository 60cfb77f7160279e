#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "segwan/v1/registration.grpc.pb.h"

namespace segwan::edge {

// How the agent keeps in touch with the controller. Defaults suit a WAN; tests shrink them.
struct RegistrationTiming {
  std::chrono::milliseconds first_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  std::chrono::milliseconds call_deadline{3'000};
  std::chrono::milliseconds default_heartbeat{5'000};  // when the controller does not say
};

// What the agent tells the controller. `token_file` is re-read before every attempt, so an
// operator can fix a refused token without restarting the agent.
struct RegistrationInfo {
  std::string device_id;
  std::string token_file;
  std::string grpc_address;
  std::vector<std::string> capabilities;
  segwan::v1::SliceMode slice_mode = segwan::v1::SLICE_MODE_UNSPECIFIED;
  std::string locator;
  std::string version;
  std::function<std::vector<segwan::v1::Interface>()> interfaces;  // read at each registration
  std::function<void(uint64_t)> leader_epoch;  // told each accepted registration's leader_epoch
};

// Registers with the controller and heartbeats, in a thread of its own. While the controller
// is away or refuses, it retries with exponential backoff (with jitter); when a heartbeat
// fails or the controller asks for it, it registers again. Stop() unregisters.
// With several controllers (one leads, the others refuse edges), a registration tries each
// in turn, starting with the last that accepted; the backoff starts after a full round.
class Registrar {
 public:
  Registrar(std::shared_ptr<grpc::Channel> channel, RegistrationInfo info,
            RegistrationTiming timing = {});
  Registrar(std::vector<std::shared_ptr<grpc::Channel>> channels, RegistrationInfo info,
            RegistrationTiming timing = {});
  ~Registrar();
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  void Start();
  void Stop();

  struct State {
    bool registered = false;
    bool enabled = false;
    std::string session_id;
    uint64_t registrations = 0;  // successful RegisterDevice calls so far
    size_t controller = 0;       // index of the controller it registered with (or tries next)
    std::string last_error;
  };
  State state() const;

 private:
  void Run();
  bool Register();  // one round over the controllers
  bool RegisterWith(size_t k);
  bool Heartbeat();
  // Sleeps up to `d`; returns false when Stop() was called meanwhile.
  bool Sleep(std::chrono::milliseconds d);

  std::vector<std::unique_ptr<segwan::v1::Registration::Stub>> stubs_;
  RegistrationInfo info_;
  RegistrationTiming timing_;
  std::chrono::milliseconds heartbeat_;
  std::thread thread_;

  mutable std::mutex mu_;  // guards state_ and stop_
  std::condition_variable cv_;
  bool stop_ = false;
  State state_;
};

}  // namespace segwan::edge
