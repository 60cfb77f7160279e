#include "edge-os/southbound/edge_client.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "segwan/tls.h"

namespace segwan::controller {

namespace pb = segwan::v1;

namespace {

// The call starts at the first Read, so that Cancel reaches a stream still connecting (a
// frozen edge accepts TCP but never finishes the handshake).
class GrpcResultStream : public ResultStream {
 public:
  GrpcResultStream(pb::EdgeManager::Stub* stub, uint64_t log_id, uint64_t cursor, std::string device,
                   std::chrono::milliseconds batch_delay)
      : device_(std::move(device)), stub_(stub) {
    first_.set_log_id(log_id);
    first_.set_ack(cursor);
    first_.set_max_delay_ms(static_cast<uint32_t>(batch_delay.count()));
  }
  bool Read(pb::StampResultBatch* batch) override {
    if (!stream_) {
      stream_ = stub_->WatchStampResults(&ctx_);
      ok_ = stream_->Write(first_);
    }
    return ok_ && stream_->Read(batch);
  }
  bool Ack(uint64_t log_id, uint64_t cursor) override {
    pb::WatchStampResultsRequest ack;
    ack.set_log_id(log_id);
    ack.set_ack(cursor);
    return ok_ && stream_->Write(ack);
  }
  void Cancel() override { ctx_.TryCancel(); }
  Status Finish() override {
    if (!stream_) return Error{device_ + ": the result stream never started", "", kGrpcUnavailable};
    const grpc::Status st = stream_->Finish();
    if (st.ok()) return Status::Ok();
    return Error{device_ + ": " + (st.error_message().empty() ? "gRPC code " + std::to_string(st.error_code())
                                                              : st.error_message()),
                 "", static_cast<int>(st.error_code())};
  }

 private:
  std::string device_;
  pb::EdgeManager::Stub* stub_;
  pb::WatchStampResultsRequest first_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchStampResultsRequest, pb::StampResultBatch>> stream_;
  bool ok_ = false;
};

class GrpcEdgeClient : public EdgeClient {
 public:
  GrpcEdgeClient(std::string device, std::shared_ptr<grpc::Channel> ch, EdgeClientOptions o)
      : device_(std::move(device)), stub_(pb::EdgeManager::NewStub(std::move(ch))), o_(std::move(o)) {}

  Result<pb::ApplySliceResponse> ApplySlice(const pb::Slice& slice) override {
    pb::ApplySliceRequest req;
    *req.mutable_slice() = slice;
    return Call<pb::ApplySliceResponse>(req, &pb::EdgeManager::Stub::ApplySlice);
  }
  Status RemoveSlice(const std::string& id) override {
    pb::RemoveSliceRequest req;
    req.set_id(id);
    return Done(Call<pb::RemoveSliceResponse>(req, &pb::EdgeManager::Stub::RemoveSlice));
  }
  Result<pb::GetStateResponse> GetState() override {
    return Call<pb::GetStateResponse>(pb::GetStateRequest{}, &pb::EdgeManager::Stub::GetState);
  }
  Status Init(pb::StampRole role, const std::string& address) override {
    pb::InitRequest req;
    req.set_role(role);
    req.set_stamp_source_address(address);
    return Done(Call<pb::InitResponse>(req, &pb::EdgeManager::Stub::Init));
  }
  Status CreateStampSession(pb::StampRole role, const pb::StampSessionParams& params) override {
    pb::CreateStampSessionRequest req;
    req.set_role(role);
    *req.mutable_params() = params;
    return Done(Call<pb::CreateStampSessionResponse>(req, &pb::EdgeManager::Stub::CreateStampSession));
  }
  Status StartStampSession(pb::StampRole role, uint32_t ssid) override {
    return Done(Call<pb::StartStampSessionResponse>(Ref<pb::StartStampSessionRequest>(role, ssid),
                                                    &pb::EdgeManager::Stub::StartStampSession));
  }
  Status StopStampSession(pb::StampRole role, uint32_t ssid) override {
    return Done(Call<pb::StopStampSessionResponse>(Ref<pb::StopStampSessionRequest>(role, ssid),
                                                   &pb::EdgeManager::Stub::StopStampSession));
  }
  Status DestroyStampSession(pb::StampRole role, uint32_t ssid) override {
    return Done(Call<pb::DestroyStampSessionResponse>(Ref<pb::DestroyStampSessionRequest>(role, ssid),
                                                      &pb::EdgeManager::Stub::DestroyStampSession));
  }
  Result<pb::GetStampSessionResultsResponse> GetStampSessionResults(uint32_t ssid) override {
    pb::GetStampSessionResultsRequest req;
    req.set_ssid(ssid);
    return Call<pb::GetStampSessionResultsResponse>(req, &pb::EdgeManager::Stub::GetStampSessionResults);
  }

  std::unique_ptr<ResultStream> WatchStampResults(uint64_t log_id, uint64_t cursor) override {
    return std::make_unique<GrpcResultStream>(stub_.get(), log_id, cursor, device_, o_.stream_batch_delay);
  }

  Status StartLossMonitoring(const std::vector<std::string>& segments, pb::LossDirection d,
                             uint32_t period_ms) override {
    auto req = Loss<pb::StartLossMonitoringRequest>(segments, d);
    req.set_period_ms(period_ms);
    return Done(Call<pb::StartLossMonitoringResponse>(req, &pb::EdgeManager::Stub::StartLossMonitoring));
  }
  Status StopLossMonitoring(const std::vector<std::string>& segments, pb::LossDirection d) override {
    return Done(Call<pb::StopLossMonitoringResponse>(Loss<pb::StopLossMonitoringRequest>(segments, d),
                                                     &pb::EdgeManager::Stub::StopLossMonitoring));
  }
  Result<pb::ReadLossCountersResponse> ReadLossCounters(const std::vector<std::string>& segments,
                                                        pb::LossDirection d) override {
    return Call<pb::ReadLossCountersResponse>(Loss<pb::ReadLossCountersRequest>(segments, d),
                                              &pb::EdgeManager::Stub::ReadLossCounters);
  }

 private:
  template <typename Req>
  static Req Loss(const std::vector<std::string>& segments, pb::LossDirection d) {
    Req r;
    for (const auto& s : segments) r.mutable_flow()->add_segments(s);
    r.set_direction(d);
    return r;
  }
  template <typename Req>
  static Req Ref(pb::StampRole role, uint32_t ssid) {
    Req r;
    r.mutable_session()->set_role(role);
    r.mutable_session()->set_ssid(ssid);
    return r;
  }
  template <typename T>
  static Status Done(const Result<T>& r) {
    return r ? Status::Ok() : Status(r.error());
  }

  template <typename Resp, typename Req, typename Method>
  Result<Resp> Call(const Req& req, Method method) {
    grpc::Status st;
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + o_.deadline);
      Resp resp;
      st = (stub_.get()->*method)(&ctx, req, &resp);
      if (st.ok()) return resp;
      const bool transient = st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                             st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      if (!transient || attempt >= o_.attempts) break;
      std::this_thread::sleep_for(o_.retry_backoff * attempt);
    }
    return Error{device_ + ": " + (st.error_message().empty() ? "gRPC code " + std::to_string(st.error_code())
                                                              : st.error_message()),
                 "", static_cast<int>(st.error_code())};
  }

  std::string device_;
  std::unique_ptr<pb::EdgeManager::Stub> stub_;
  EdgeClientOptions o_;
};

}  // namespace

Result<std::unique_ptr<GrpcEdgeConnector>> GrpcEdgeConnector::Create(EdgeClientOptions o) {
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (o.tls) {
    auto tls = MtlsChannelCredentials(*o.tls);
    if (!tls) return tls.error();
    creds = std::move(*tls);
  }
  return std::unique_ptr<GrpcEdgeConnector>(new GrpcEdgeConnector(std::move(o), std::move(creds)));
}

void GrpcEdgeConnector::Reset(const std::string& device_id) {
  std::lock_guard lock(mu_);
  clients_.erase(device_id);
}

std::shared_ptr<EdgeClient> GrpcEdgeConnector::Connect(const std::string& device_id,
                                                       const std::string& address) {
  std::lock_guard lock(mu_);
  auto& slot = clients_[device_id];
  if (slot.second && slot.first == address) return slot.second;
  // Keepalive finds a dead peer in seconds rather than at the next call's deadline, and
  // reconnecting is tried every 2 s at most, so an edge that is back is reached at once.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
  // Only the device itself holds a certificate naming it: an address that now leads
  // elsewhere fails the handshake instead of receiving the device's configuration.
  auto channel = options_.tls ? MtlsChannel(address, creds_, pki::DeviceName(device_id), args)
                              : grpc::CreateCustomChannel(address, creds_, args);
  slot = {address, std::make_shared<GrpcEdgeClient>(device_id, std::move(channel), options_)};
  return slot.second;
}

}  // namespace segwan::controller
