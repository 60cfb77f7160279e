#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "edge-manager/api/convert.h"
#include "edge-manager/loss/altmark.h"
#include "edge-manager/slices/slice.h"
#include "edge-manager/stamp/result_log.h"
#include "segwan/v1/edge.grpc.pb.h"

namespace segwan::edge {

// The EdgeManager gRPC service: thin handlers that translate messages into domain calls and
// map results to specific status codes. Desired slice state is kept in `state_dir` so an
// agent restart restores it. Without a STAMP engine or a loss engine, their RPCs answer
// FAILED_PRECONDITION.
class EdgeService final : public segwan::v1::EdgeManager::Service {
 public:
  // `stamp` may be null: the STAMP RPCs then answer FAILED_PRECONDITION.
  EdgeService(netlink::Dataplane* dp, SliceManager* slices, InterfaceRoles roles,
              std::string state_dir, stamp::UserspaceEngine* stamp = nullptr);

  void UseLoss(loss::AltmarkEngine* loss) { loss_ = loss; }

  // Re-applies the slices saved in the state folder; returns how many were restored.
  Result<int> RestoreSavedSlices();

  grpc::Status ListInterfaces(grpc::ServerContext*, const segwan::v1::ListInterfacesRequest*,
                              segwan::v1::ListInterfacesResponse*) override;
  grpc::Status ApplySlice(grpc::ServerContext*, const segwan::v1::ApplySliceRequest*,
                          segwan::v1::ApplySliceResponse*) override;
  grpc::Status RemoveSlice(grpc::ServerContext*, const segwan::v1::RemoveSliceRequest*,
                           segwan::v1::RemoveSliceResponse*) override;
  grpc::Status GetState(grpc::ServerContext*, const segwan::v1::GetStateRequest*,
                        segwan::v1::GetStateResponse*) override;

  grpc::Status Init(grpc::ServerContext*, const segwan::v1::InitRequest*,
                    segwan::v1::InitResponse*) override;
  grpc::Status Reset(grpc::ServerContext*, const segwan::v1::ResetRequest*,
                     segwan::v1::ResetResponse*) override;
  grpc::Status CreateStampSession(grpc::ServerContext*, const segwan::v1::CreateStampSessionRequest*,
                                  segwan::v1::CreateStampSessionResponse*) override;
  grpc::Status StartStampSession(grpc::ServerContext*, const segwan::v1::StartStampSessionRequest*,
                                 segwan::v1::StartStampSessionResponse*) override;
  grpc::Status StopStampSession(grpc::ServerContext*, const segwan::v1::StopStampSessionRequest*,
                                segwan::v1::StopStampSessionResponse*) override;
  grpc::Status DestroyStampSession(grpc::ServerContext*, const segwan::v1::DestroyStampSessionRequest*,
                                   segwan::v1::DestroyStampSessionResponse*) override;
  grpc::Status GetStampSessionResults(grpc::ServerContext*,
                                      const segwan::v1::GetStampSessionResultsRequest*,
                                      segwan::v1::GetStampSessionResultsResponse*) override;

  grpc::Status WatchStampResults(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<segwan::v1::StampResultBatch, segwan::v1::WatchStampResultsRequest>*) override;
  // Ends the result streams (before the server shuts down: a stream never ends by itself).
  void StopStreams() { streams_stopping_ = true; }
  const stamp::ResultLog& result_log() const { return log_; }

  grpc::Status StartLossMonitoring(grpc::ServerContext*, const segwan::v1::StartLossMonitoringRequest*,
                                   segwan::v1::StartLossMonitoringResponse*) override;
  grpc::Status StopLossMonitoring(grpc::ServerContext*, const segwan::v1::StopLossMonitoringRequest*,
                                  segwan::v1::StopLossMonitoringResponse*) override;
  grpc::Status ReadLossCounters(grpc::ServerContext*, const segwan::v1::ReadLossCountersRequest*,
                                segwan::v1::ReadLossCountersResponse*) override;

 private:
  std::string SlicePath(const std::string& id) const;
  netlink::Dataplane* dp_;
  SliceManager* slices_;
  InterfaceRoles roles_;
  // The interfaces a request names, or the agent's WAN interfaces when it names none.
  std::vector<std::string> WanOr(const google::protobuf::RepeatedPtrField<std::string>& asked) const;
  std::string state_dir_;
  stamp::UserspaceEngine* stamp_;
  loss::AltmarkEngine* loss_ = nullptr;
  stamp::ResultLog log_;
  std::atomic<uint64_t> stream_generation_{0};  // the newest stream wins
  std::atomic<bool> streams_stopping_{false};
};

// Maps a domain error to a gRPC status: bad input (an Error with a field) is INVALID_ARGUMENT,
// a kernel refusal is FAILED_PRECONDITION or INTERNAL, with the message kept.
grpc::Status ToGrpc(const Error& e);

}  // namespace segwan::edge
