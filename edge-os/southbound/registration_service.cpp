#include "edge-os/southbound/registration_service.h"

#include <grpcpp/grpcpp.h>

#include "segwan/log.h"
#include "segwan/tls.h"

namespace segwan::controller {

namespace pb = segwan::v1;

grpc::Status ToGrpcStatus(const Error& e) {
  grpc::StatusCode code;
  switch (e.code) {
    case kUnauthenticated: code = grpc::StatusCode::UNAUTHENTICATED; break;
    case kForbidden: code = grpc::StatusCode::PERMISSION_DENIED; break;
    case kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case kConflict: code = grpc::StatusCode::ALREADY_EXISTS; break;
    case kUnavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    case kTooMany: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    default: code = grpc::StatusCode::INVALID_ARGUMENT; break;
  }
  return {code, e.ToString()};
}

Result<std::string> RegistrationService::Caller(grpc::ServerContext* ctx, const std::string& claimed) const {
  if (!trust_) return claimed;
  auto auth = ctx->auth_context();
  auto cert = auth ? PeerCertificate(*auth) : std::nullopt;
  if (!cert) return ApiError(kUnauthenticated, "", "a client certificate from the controller's CA is required (enrol first)");
  auto id = trust_->Authorise(*cert);
  if (!id) {
    SEGWAN_LOG(kWarn, "registration") << "refused " << ctx->peer() << ": " << id.error().message;
    return id.error();
  }
  if (!claimed.empty() && claimed != *id) {
    SEGWAN_LOG(kWarn, "registration") << "device " << *id << " at " << ctx->peer() << " claimed to be '" << claimed << "'";
    return ApiError(kForbidden, "device_id", "the certificate is device '" + *id + "'s, not '" + claimed + "'s");
  }
  return *id;
}

grpc::Status RegistrationService::Enroll(grpc::ServerContext* ctx, const pb::EnrollRequest* req, pb::EnrollResponse* out) {
  if (!trust_) return {grpc::StatusCode::FAILED_PRECONDITION, "the controller runs without TLS: nothing to enrol"};
  auto issued = trust_->Enroll(req->device_id(), req->join_token(), req->csr());
  if (!issued) {
    SEGWAN_LOG(kWarn, "registration") << "enrolment of '" << req->device_id().substr(0, 64) << "' from " << ctx->peer()
                                      << " refused: " << issued.error().message;
    return ToGrpcStatus(issued.error());
  }
  out->set_certificate(issued->pem);
  out->set_ca_certificate(trust_->ca_pem());
  return grpc::Status::OK;
}

grpc::Status RegistrationService::RenewCertificate(grpc::ServerContext* ctx, const pb::RenewCertificateRequest* req,
                                                   pb::RenewCertificateResponse* out) {
  if (!trust_) return {grpc::StatusCode::FAILED_PRECONDITION, "the controller runs without TLS"};
  auto auth = ctx->auth_context();
  auto cert = auth ? PeerCertificate(*auth) : std::nullopt;
  if (!cert) return {grpc::StatusCode::UNAUTHENTICATED, "a client certificate is required"};
  auto issued = trust_->Renew(*cert, req->csr());
  if (!issued) return ToGrpcStatus(issued.error());
  out->set_certificate(issued->pem);
  return grpc::Status::OK;
}

grpc::Status RegistrationService::RegisterDevice(grpc::ServerContext* ctx, const pb::RegisterDeviceRequest* req,
                                                 pb::RegisterDeviceResponse* out) {
  auto id = Caller(ctx, req->device_id());
  if (!id) return ToGrpcStatus(id.error());
  pb::RegisterDeviceRequest named = *req;
  named.set_device_id(*id);
  auto r = c_->Register(named, ctx->peer(), /*authenticated=*/trust_ != nullptr);
  if (!r) return ToGrpcStatus(r.error());
  *out = std::move(*r);
  out->set_leader_epoch(leader_epoch_);
  return grpc::Status::OK;
}

grpc::Status RegistrationService::Heartbeat(grpc::ServerContext* ctx, const pb::HeartbeatRequest* req,
                                            pb::HeartbeatResponse* out) {
  auto id = Caller(ctx, req->device_id());
  if (!id) return ToGrpcStatus(id.error());
  out->set_reregister(!c_->Heartbeat(*id, req->session_id()));
  return grpc::Status::OK;
}

grpc::Status RegistrationService::Unregister(grpc::ServerContext* ctx, const pb::UnregisterRequest* req,
                                             pb::UnregisterResponse*) {
  auto id = Caller(ctx, req->device_id());
  if (!id) return ToGrpcStatus(id.error());
  c_->Unregister(*id, req->session_id());
  return grpc::Status::OK;
}

}  // namespace segwan::controller
