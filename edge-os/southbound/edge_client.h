#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/security/credentials.h>

#include "segwan/result.h"
#include "segwan/tls.h"
#include "segwan/v1/edge.grpc.pb.h"

namespace segwan::controller {

// One open WatchStampResults stream, driven by gRPC's own threads: no thread waits on it.
// The handler's `batch` gets each batch in order, never two at once; `done` follows exactly
// once, after the last batch, with how the stream ended (Error.code: the gRPC status code).
// Either may run on any thread, also inside WatchStampResults, Ack or Cancel: callers hold no
// lock of their own across those. Thread-safe.
class ResultStream {
 public:
  struct Handler {
    std::function<void(const segwan::v1::StampResultBatch&)> batch;
    std::function<void(const Status&)> done;
  };
  virtual ~ResultStream() = default;
  // Acknowledges the records up to `cursor`; an acknowledgement not sent yet is replaced by a
  // newer one. Ignored once the stream has ended.
  virtual void Ack(uint64_t log_id, uint64_t cursor) = 0;
  // Ends the stream (also while it is still connecting); `done` follows.
  virtual void Cancel() = 0;
};

// Error.code of a failed edge call: the gRPC status code (INVALID_ARGUMENT = 3, ...).
// Error.message starts with the device id.
class EdgeClient {
 public:
  virtual ~EdgeClient() = default;
  virtual Result<segwan::v1::ApplySliceResponse> ApplySlice(const segwan::v1::Slice& slice) = 0;
  virtual Status RemoveSlice(const std::string& id) = 0;
  virtual Result<segwan::v1::GetStateResponse> GetState() = 0;
  virtual Status Init(segwan::v1::StampRole role, const std::string& address) = 0;
  virtual Status CreateStampSession(segwan::v1::StampRole role,
                                    const segwan::v1::StampSessionParams& params) = 0;
  virtual Status StartStampSession(segwan::v1::StampRole role, uint32_t ssid) = 0;
  virtual Status StopStampSession(segwan::v1::StampRole role, uint32_t ssid) = 0;
  virtual Status DestroyStampSession(segwan::v1::StampRole role, uint32_t ssid) = 0;
  virtual Result<segwan::v1::GetStampSessionResultsResponse> GetStampSessionResults(uint32_t ssid) = 0;
  // Notification mode: opens the edge's result stream, resuming after `cursor` of log
  // `log_id` (0, 0: from whatever the edge holds). No deadline: it lasts until cancelled.
  virtual std::shared_ptr<ResultStream> WatchStampResults(uint64_t log_id, uint64_t cursor,
                                                          ResultStream::Handler handler) = 0;
  // Loss monitoring of one flow (its SID list), ingress (colour + count) or egress (count).
  virtual Status StartLossMonitoring(const std::vector<std::string>& segments,
                                     segwan::v1::LossDirection d, uint32_t period_ms) = 0;
  virtual Status StopLossMonitoring(const std::vector<std::string>& segments, segwan::v1::LossDirection d) = 0;
  virtual Result<segwan::v1::ReadLossCountersResponse> ReadLossCounters(const std::vector<std::string>& segments,
                                                                        segwan::v1::LossDirection d) = 0;
};

// Hands out the client of a device by its gRPC address.
class EdgeConnector {
 public:
  virtual ~EdgeConnector() = default;
  virtual std::shared_ptr<EdgeClient> Connect(const std::string& device_id,
                                              const std::string& grpc_address) = 0;
  // The edge (re)registered: the next Connect makes a new channel instead of reusing one
  // that may be half-open towards the edge's previous life.
  virtual void Reset(const std::string& /*device_id*/) {}
};

// gRPC codes worth telling apart.
inline constexpr int kGrpcInvalidArgument = 3;
inline constexpr int kGrpcNotFound = 5;
inline constexpr int kGrpcAlreadyExists = 6;
inline constexpr int kGrpcUnavailable = 14;
inline constexpr int kGrpcUnimplemented = 12;

struct EdgeClientOptions {
  std::chrono::milliseconds deadline{3000};
  int attempts = 3;  // calls that fail UNAVAILABLE or DEADLINE_EXCEEDED are tried again
  std::chrono::milliseconds retry_backoff{200};
  // Notification mode: how long an edge may hold a record to fill a batch. Longer batches
  // cost the controller less per record (each message has a fixed cost) and add latency.
  std::chrono::milliseconds stream_batch_delay{250};
  // Mutual TLS towards the edges (the controller's own identity); none = plaintext.
  std::optional<TlsIdentity> tls;
  // As the leader of several controllers (edge-os/ha): its epoch, sent with every call
  // (kLeaderEpochMetadata) so that the edges refuse an older leader's. 0: not sent.
  uint64_t leader_epoch = 0;
};

// The real connector: one channel per device address, kept while the address stays the same.
class GrpcEdgeConnector : public EdgeConnector {
 public:
  static Result<std::unique_ptr<GrpcEdgeConnector>> Create(EdgeClientOptions options);
  std::shared_ptr<EdgeClient> Connect(const std::string& device_id,
                                      const std::string& grpc_address) override;
  void Reset(const std::string& device_id) override;

 private:
  GrpcEdgeConnector(EdgeClientOptions o, std::shared_ptr<grpc::ChannelCredentials> c)
      : options_(std::move(o)), creds_(std::move(c)) {}
  EdgeClientOptions options_;
  std::shared_ptr<grpc::ChannelCredentials> creds_;
  std::mutex mu_;  // guards clients_
  std::map<std::string, std::pair<std::string, std::shared_ptr<EdgeClient>>> clients_;
};

}  // namespace segwan::controller
