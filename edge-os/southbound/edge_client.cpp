#include "edge-os/southbound/edge_client.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "segwan/tls.h"

namespace segwan::controller {

namespace pb = segwan::v1;

namespace {

// The result stream as a callback reactor: gRPC's threads read it and run the handler, so a
// thousand streams cost no thread each. One read is always pending; writes (the first
// request, then acknowledgements) go one at a time, the latest acknowledgement waiting.
class GrpcResultStream : public ResultStream,
                         public grpc::ClientBidiReactor<pb::WatchStampResultsRequest, pb::StampResultBatch>,
                         public std::enable_shared_from_this<GrpcResultStream> {
 public:
  GrpcResultStream(std::string device, ResultStream::Handler handler)
      : device_(std::move(device)), handler_(std::move(handler)) {}

  void Start(pb::EdgeManager::Stub* stub, uint64_t log_id, uint64_t cursor, std::chrono::milliseconds batch_delay,
             const std::string& epoch) {
    self_ = shared_from_this();  // until OnDone
    if (!epoch.empty()) ctx_.AddMetadata(kLeaderEpochMetadata, epoch);
    write_.set_log_id(log_id);
    write_.set_ack(cursor);
    write_.set_max_delay_ms(static_cast<uint32_t>(batch_delay.count()));
    writing_ = true;
    stub->async()->WatchStampResults(&ctx_, this);
    StartWrite(&write_);
    StartRead(&batch_);
    StartCall();
  }
  void Ack(uint64_t log_id, uint64_t cursor) override {
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      if (writing_) {
        pending_ = {log_id, cursor};
        return;
      }
      writing_ = true;
      write_.Clear();
      write_.set_log_id(log_id);
      write_.set_ack(cursor);
    }
    StartWrite(&write_);
  }
  void Cancel() override { ctx_.TryCancel(); }  // safe after the end too: the context lives on

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is ending; OnDone follows
    handler_.batch(batch_);
    StartRead(&batch_);
  }
  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok || !pending_) return;
      writing_ = true;
      write_.Clear();
      write_.set_log_id(pending_->first);
      write_.set_ack(pending_->second);
      pending_.reset();
    }
    StartWrite(&write_);
  }
  void OnDone(const grpc::Status& st) override {
    auto keep = std::move(self_);  // the last reaction: this may go when it returns
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    if (st.ok()) {
      handler_.done(Status::Ok());
    } else {
      handler_.done(Error{device_ + ": " + (st.error_message().empty() ? "gRPC code " + std::to_string(st.error_code())
                                                                      : st.error_message()),
                          "", static_cast<int>(st.error_code())});
    }
  }

 private:
  std::string device_;
  ResultStream::Handler handler_;
  grpc::ClientContext ctx_;
  pb::StampResultBatch batch_;
  std::shared_ptr<GrpcResultStream> self_;
  std::mutex mu_;  // guards write_ (while no write is pending), writing_, pending_, done_
  pb::WatchStampResultsRequest write_;
  bool writing_ = false;
  std::optional<std::pair<uint64_t, uint64_t>> pending_;
  bool done_ = false;
};

class GrpcEdgeClient : public EdgeClient {
 public:
  GrpcEdgeClient(std::string device, std::shared_ptr<grpc::Channel> ch, EdgeClientOptions o)
      : device_(std::move(device)),
        stub_(pb::EdgeManager::NewStub(std::move(ch))),
        o_(std::move(o)),
        epoch_(o_.leader_epoch ? std::to_string(o_.leader_epoch) : "") {}

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

  std::shared_ptr<ResultStream> WatchStampResults(uint64_t log_id, uint64_t cursor,
                                                  ResultStream::Handler handler) override {
    auto s = std::make_shared<GrpcResultStream>(device_, std::move(handler));
    s->Start(stub_.get(), log_id, cursor, o_.stream_batch_delay, epoch_);
    return s;
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
      if (!epoch_.empty()) ctx.AddMetadata(kLeaderEpochMetadata, epoch_);
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
  const std::string epoch_;  // o_.leader_epoch as sent with each call; empty: none
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
