#pragma once

// What a controller that follows serves until it leads. The controller's services keep
// their state in memory and act on the edges (pushes with rollback, per-edge order), so one
// process does it all: a follower hands every REST call to the leader and answers with the
// leader's answer (a write through a follower is the leader's write, at once), answers
// /api/v1/health itself (role and leader), and refuses edges with UNAVAILABLE naming the
// leader, so that they move on to the next controller they know. Once this process holds
// the lock, during its grace (LeaderElection::Grace), both answer "taking over".
#include <memory>
#include <string>
#include <thread>

#include "edge-os/ha/leader.h"
#include "segwan/result.h"
#include "segwan/v1/registration.grpc.pb.h"

namespace httplib {
class Server;
}

namespace segwan::controller {

class FollowerRest {
 public:
  explicit FollowerRest(const LeaderElection* election);
  ~FollowerRest();
  FollowerRest(const FollowerRest&) = delete;
  FollowerRest& operator=(const FollowerRest&) = delete;
  Result<int> Start(const std::string& host, int port);  // port 0: any
  void Stop();

 private:
  const LeaderElection* election_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

class FollowerRegistration final : public segwan::v1::Registration::Service {
 public:
  explicit FollowerRegistration(const LeaderElection* election) : election_(election) {}
  grpc::Status Enroll(grpc::ServerContext* ctx, const segwan::v1::EnrollRequest*, segwan::v1::EnrollResponse*) override {
    return Refuse(ctx);
  }
  grpc::Status RenewCertificate(grpc::ServerContext* ctx, const segwan::v1::RenewCertificateRequest*,
                                segwan::v1::RenewCertificateResponse*) override {
    return Refuse(ctx);
  }
  grpc::Status RegisterDevice(grpc::ServerContext* ctx, const segwan::v1::RegisterDeviceRequest*,
                              segwan::v1::RegisterDeviceResponse*) override {
    return Refuse(ctx);
  }
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const segwan::v1::HeartbeatRequest*,
                         segwan::v1::HeartbeatResponse*) override {
    return Refuse(ctx);
  }
  grpc::Status Unregister(grpc::ServerContext* ctx, const segwan::v1::UnregisterRequest*,
                          segwan::v1::UnregisterResponse*) override {
    return Refuse(ctx);
  }

 private:
  // UNAVAILABLE, with the leader's address in the message and in trailing metadata
  // "segwan-leader" (empty while nobody leads).
  grpc::Status Refuse(grpc::ServerContext* ctx) const;
  const LeaderElection* election_;
};

}  // namespace segwan::controller
