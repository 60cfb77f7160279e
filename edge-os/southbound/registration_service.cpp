#include "edge-os/southbound/registration_service.h"

#include <grpcpp/grpcpp.h>

namespace segwan::controller {

namespace pb = segwan::v1;

grpc::Status RegistrationService::RegisterDevice(grpc::ServerContext* ctx, const pb::RegisterDeviceRequest* req,
                                                 pb::RegisterDeviceResponse* out) {
  auto r = c_->Register(*req, ctx->peer());
  if (!r) {
    const auto code = r.error().code == kUnauthenticated ? grpc::StatusCode::UNAUTHENTICATED
                                                         : grpc::StatusCode::INVALID_ARGUMENT;
    return {code, r.error().ToString()};
  }
  *out = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status RegistrationService::Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest* req,
                                            pb::HeartbeatResponse* out) {
  out->set_reregister(!c_->Heartbeat(req->device_id(), req->session_id()));
  return grpc::Status::OK;
}

grpc::Status RegistrationService::Unregister(grpc::ServerContext*, const pb::UnregisterRequest* req,
                                             pb::UnregisterResponse*) {
  c_->Unregister(req->device_id(), req->session_id());
  return grpc::Status::OK;
}

}  // namespace segwan::controller
