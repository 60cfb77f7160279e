#pragma once

#include "edge-os/controller/controller.h"
#include "segwan/v1/registration.grpc.pb.h"

namespace segwan::controller {

// The Registration gRPC service the edges dial: a thin translation onto the Controller.
class RegistrationService final : public segwan::v1::Registration::Service {
 public:
  explicit RegistrationService(Controller* c) : c_(c) {}
  grpc::Status RegisterDevice(grpc::ServerContext* ctx, const segwan::v1::RegisterDeviceRequest* req,
                              segwan::v1::RegisterDeviceResponse* out) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const segwan::v1::HeartbeatRequest* req,
                         segwan::v1::HeartbeatResponse* out) override;
  grpc::Status Unregister(grpc::ServerContext* ctx, const segwan::v1::UnregisterRequest* req,
                          segwan::v1::UnregisterResponse* out) override;

 private:
  Controller* c_;
};

}  // namespace segwan::controller
