#pragma once

#include "edge-os/controller/controller.h"
#include "edge-os/trust/device_trust.h"
#include "segwan/v1/registration.grpc.pb.h"

namespace segwan::controller {

// The Registration gRPC service the edges dial: a thin translation onto the Controller.
// With `trust` (mutual TLS, the default) the device a call speaks for is the one its client
// certificate names and DeviceTrust accepts; without it (plaintext mode) the shared
// registration token is checked by the Controller and Enroll is refused.
class RegistrationService final : public segwan::v1::Registration::Service {
 public:
  // `leader_epoch`: this controller's as leader of several (edge-os/ha), told to each edge
  // that registers; 0 for a controller alone.
  RegistrationService(Controller* c, DeviceTrust* trust, uint64_t leader_epoch = 0)
      : c_(c), trust_(trust), leader_epoch_(leader_epoch) {}
  grpc::Status Enroll(grpc::ServerContext* ctx, const segwan::v1::EnrollRequest* req,
                      segwan::v1::EnrollResponse* out) override;
  grpc::Status RenewCertificate(grpc::ServerContext* ctx, const segwan::v1::RenewCertificateRequest* req,
                                segwan::v1::RenewCertificateResponse* out) override;
  grpc::Status RegisterDevice(grpc::ServerContext* ctx, const segwan::v1::RegisterDeviceRequest* req,
                              segwan::v1::RegisterDeviceResponse* out) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const segwan::v1::HeartbeatRequest* req,
                         segwan::v1::HeartbeatResponse* out) override;
  grpc::Status Unregister(grpc::ServerContext* ctx, const segwan::v1::UnregisterRequest* req,
                          segwan::v1::UnregisterResponse* out) override;

 private:
  // The device id of the call: from the certificate with trust, else `claimed`. A claimed id
  // that differs from the certificate's is refused.
  Result<std::string> Caller(grpc::ServerContext* ctx, const std::string& claimed) const;
  Controller* c_;
  DeviceTrust* trust_;
  uint64_t leader_epoch_;
};

// Maps a controller Error (HTTP status in code) to a gRPC status that keeps the message.
grpc::Status ToGrpcStatus(const Error& e);

}  // namespace segwan::controller
