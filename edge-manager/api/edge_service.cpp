#include "edge-manager/api/edge_service.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include "edge-manager/api/convert.h"
#include "segwan/log.h"

namespace segwan::edge {

namespace pb = segwan::v1;

grpc::Status ToGrpc(const Error& e) {
  if (!e.field.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, e.ToString()};
  switch (e.code) {
    case ENOENT:
      return {grpc::StatusCode::NOT_FOUND, e.message};
    case EEXIST:
      return {grpc::StatusCode::ALREADY_EXISTS, e.message};
    case EINVAL:
    case EOPNOTSUPP:
    case ENODEV:
      return {grpc::StatusCode::FAILED_PRECONDITION, e.message};
    case EPERM:
    case EACCES:
      return {grpc::StatusCode::PERMISSION_DENIED, e.message};
    case ENOSPC:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.message};
    default:
      return {grpc::StatusCode::INTERNAL, e.message};
  }
}

static pb::SliceMode ModeToProto(SliceMode m) {
  return m == SliceMode::kVrf ? pb::SLICE_MODE_VRF : pb::SLICE_MODE_TABLE;
}

EdgeService::EdgeService(netlink::Dataplane* dp, SliceManager* slices, InterfaceRoles roles,
                         std::string state_dir, stamp::UserspaceEngine* stamp)
    : dp_(dp),
      slices_(slices),
      roles_(std::move(roles)),
      state_dir_(std::move(state_dir)),
      stamp_(stamp) {}

std::string EdgeService::SlicePath(const std::string& id) const {
  return state_dir_ + "/slices/" + id + ".pb";
}

Result<int> EdgeService::RestoreSavedSlices() {
  if (state_dir_.empty()) return 0;
  const std::string dir = state_dir_ + "/slices";
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  int restored = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 4 || name.substr(name.size() - 3) != ".pb") continue;
    std::ifstream in(dir + "/" + name, std::ios::binary);
    pb::Slice slice;
    if (!slice.ParseFromIstream(&in)) {
      SEGWAN_LOG(kWarn, "state") << "ignoring unreadable " << dir << "/" << name;
      continue;
    }
    auto spec = SliceFromProto(slice);
    if (!spec) continue;
    if (auto r = slices_->Apply(*spec); r) {
      ++restored;
    } else {
      SEGWAN_LOG(kWarn, "state") << "cannot restore slice " << spec->id << ": " << r.error().ToString();
    }
  }
  closedir(d);
  return restored;
}

grpc::Status EdgeService::ListInterfaces(grpc::ServerContext*, const pb::ListInterfacesRequest*,
                                         pb::ListInterfacesResponse* out) {
  auto links = dp_->Links();
  if (!links) return ToGrpc(links.error());
  for (auto& i : InterfacesToProto(*links, roles_)) *out->add_interfaces() = std::move(i);
  return grpc::Status::OK;
}

grpc::Status EdgeService::ApplySlice(grpc::ServerContext*, const pb::ApplySliceRequest* req,
                                     pb::ApplySliceResponse* out) {
  if (!req->has_slice()) return {grpc::StatusCode::INVALID_ARGUMENT, "slice: is required"};
  const auto want = req->slice().mode();
  if (want != pb::SLICE_MODE_UNSPECIFIED && want != ModeToProto(slices_->mode())) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            std::string("slice.mode: this edge runs slices in ") + SliceModeName(slices_->mode()) +
                " mode"};
  }
  auto spec = SliceFromProto(req->slice());
  if (!spec) return ToGrpc(spec.error());
  auto counts = slices_->Apply(*spec);
  if (!counts) return ToGrpc(counts.error());
  if (!state_dir_.empty()) {
    mkdir(state_dir_.c_str(), 0700);
    mkdir((state_dir_ + "/slices").c_str(), 0700);
    const std::string path = SlicePath(spec->id), tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      SliceToProto(*spec).SerializeToOstream(&f);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      SEGWAN_LOG(kWarn, "state") << "cannot save " << path;
    }
  }
  out->set_mode(ModeToProto(slices_->mode()));
  out->set_routes_added(counts->added);
  out->set_routes_removed(counts->removed);
  return grpc::Status::OK;
}

grpc::Status EdgeService::RemoveSlice(grpc::ServerContext*, const pb::RemoveSliceRequest* req,
                                      pb::RemoveSliceResponse* out) {
  if (!IsValidIdentifier(req->id(), 32)) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "id: must match [a-z0-9-]{1,32}"};
  }
  auto counts = slices_->Remove(req->id());
  if (!counts) return ToGrpc(counts.error());
  if (!state_dir_.empty()) unlink(SlicePath(req->id()).c_str());
  out->set_routes_removed(counts->removed);
  return grpc::Status::OK;
}

grpc::Status EdgeService::GetState(grpc::ServerContext*, const pb::GetStateRequest*,
                                   pb::GetStateResponse* out) {
  for (const auto& s : slices_->Slices()) *out->add_slices() = SliceToProto(s);
  auto routes = dp_->Routes(netlink::kProtoSegwan);
  if (!routes) return ToGrpc(routes.error());
  for (const auto& r : *routes) {
    auto* o = out->add_routes();
    o->set_table(r.table);
    o->set_prefix(r.dst.ToString());
    o->set_description(r.ToString());
  }
  out->set_mode(ModeToProto(slices_->mode()));
  if (stamp_) {
    for (const auto& [name, n] : stamp_->Counters()) {
      auto* c = out->add_stamp_counters();
      c->set_name(name);
      c->set_value(n);
    }
  }
  return grpc::Status::OK;
}

// ---- STAMP ----------------------------------------------------------------------------

namespace {
// The role of a request: sender or reflector; anything else is bad input.
std::optional<bool> IsSender(pb::StampRole role) {
  if (role == pb::STAMP_ROLE_SENDER) return true;
  if (role == pb::STAMP_ROLE_REFLECTOR) return false;
  return std::nullopt;
}
const grpc::Status kNoRole{grpc::StatusCode::INVALID_ARGUMENT, "role: must be SENDER or REFLECTOR"};
const grpc::Status kNoEngine{grpc::StatusCode::FAILED_PRECONDITION, "STAMP is not enabled on this agent"};
grpc::Status FromStatus(const Status& st) { return st ? grpc::Status::OK : ToGrpc(st.error()); }
}  // namespace

std::vector<std::string> EdgeService::WanOr(const google::protobuf::RepeatedPtrField<std::string>& asked) const {
  std::vector<std::string> ifs(asked.begin(), asked.end());
  if (ifs.empty()) {  // the agent's WAN interfaces
    for (const auto& [name, role] : roles_) {
      if (role == "wan") ifs.push_back(name);
    }
  }
  return ifs;
}

grpc::Status EdgeService::Init(grpc::ServerContext*, const pb::InitRequest* req, pb::InitResponse* out) {
  if (!stamp_) return kNoEngine;
  auto sender = IsSender(req->role());
  if (!sender) return kNoRole;
  if (req->engine() == pb::STAMP_ENGINE_EBPF && !stamp_->HasEbpf()) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "engine: eBPF is not available on this edge (the agent could not load its programs)"};
  }
  if (req->reflector_udp_port() > 65535) return {grpc::StatusCode::INVALID_ARGUMENT, "reflector_udp_port: must be at most 65535"};
  // The XDP program (reflector and collector in one) goes on the named or the WAN interfaces.
  const bool xdp = stamp_->HasEbpf() && req->engine() != pb::STAMP_ENGINE_USERSPACE;
  const std::vector<std::string> ifs = xdp ? WanOr(req->interfaces()) : std::vector<std::string>{};
  if (!*sender) {
    std::optional<IpAddress> addr = ParseIpv6(req->stamp_source_address().empty() ? "::" : req->stamp_source_address());
    if (!addr) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "stamp_source_address: '" + req->stamp_source_address() + "' is not an IPv6 address"};
    }
    const uint16_t port = req->reflector_udp_port() ? static_cast<uint16_t>(req->reflector_udp_port()) : stamp::kDefaultPort;
    if (auto st = stamp_->InitReflector(*addr, port, ifs); !st) return ToGrpc(st.error());
  } else if (auto st = stamp_->AttachXdp(ifs); !st) {
    return ToGrpc(st.error());
  }
  out->set_engine(xdp ? pb::STAMP_ENGINE_EBPF : pb::STAMP_ENGINE_USERSPACE);
  return grpc::Status::OK;
}

grpc::Status EdgeService::Reset(grpc::ServerContext*, const pb::ResetRequest* req, pb::ResetResponse*) {
  if (!stamp_) return kNoEngine;
  auto sender = IsSender(req->role());
  if (!sender) return kNoRole;
  stamp_->Reset(*sender);
  return grpc::Status::OK;
}

grpc::Status EdgeService::CreateStampSession(grpc::ServerContext*, const pb::CreateStampSessionRequest* req,
                                             pb::CreateStampSessionResponse* out) {
  if (!stamp_) return kNoEngine;
  auto sender = IsSender(req->role());
  if (!sender) return kNoRole;
  Status st;
  const pb::StampEngine asked = req->params().engine();
  // A request that contradicts itself is refused as such, whatever this edge can run.
  if (*sender && asked == pb::STAMP_ENGINE_EBPF && req->params().follow_up_telemetry()) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "params.follow_up_telemetry: the XDP collector reads no TLVs; ask for engine AUTO or USERSPACE"};
  }
  if (asked == pb::STAMP_ENGINE_EBPF && !stamp_->HasEbpf()) {
    return {grpc::StatusCode::FAILED_PRECONDITION, "params.engine: eBPF is not available on this edge"};
  }
  pb::StampEngine engine = pb::STAMP_ENGINE_USERSPACE;
  if (*sender) {
    auto c = SenderFromProto(req->params());
    if (!c) return ToGrpc(c.error());
    if (asked == pb::STAMP_ENGINE_EBPF && c->mode != stamp::Mode::kUnauthenticated) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "params.engine: the eBPF sender takes unauthenticated sessions only (the HMAC covers T1)"};
    }
    c->ebpf = asked == pb::STAMP_ENGINE_EBPF        ? stamp::EbpfUse::kRequired
              : asked == pb::STAMP_ENGINE_USERSPACE ? stamp::EbpfUse::kNever
                                                    : stamp::EbpfUse::kWhereAvailable;
    st = stamp_->AddSenderSession(*c);
    if (st && stamp_->SenderInXdp(c->ssid)) engine = pb::STAMP_ENGINE_EBPF;
    if (!st && asked == pb::STAMP_ENGINE_EBPF && st.error().code == EOPNOTSUPP) {
      return {grpc::StatusCode::FAILED_PRECONDITION, "params.engine: " + st.error().message};
    }
  } else {
    auto c = ReflectorFromProto(req->params());
    if (!c) return ToGrpc(c.error());
    c->ebpf = asked != pb::STAMP_ENGINE_USERSPACE;
    if (req->params().engine() == pb::STAMP_ENGINE_EBPF && !stamp::XdpStamp::Fits(*c)) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "params.engine: the XDP reflector takes unauthenticated sessions only"};
    }
    if (stamp_->InXdp(*c)) engine = pb::STAMP_ENGINE_EBPF;
    st = stamp_->AddReflectorSession(*c);
  }
  if (!st) return ToGrpc(st.error());
  out->set_engine(engine);
  return grpc::Status::OK;
}

#define SEGWAN_SESSION_RPC(Name, Call)                                                      \
  grpc::Status EdgeService::Name(grpc::ServerContext*, const pb::Name##Request* req,        \
                                 pb::Name##Response*) {                                     \
    if (!stamp_) return kNoEngine;                                                          \
    auto sender = IsSender(req->session().role());                                          \
    if (!sender) return {grpc::StatusCode::INVALID_ARGUMENT, "session.role: must be SENDER or REFLECTOR"}; \
    if (req->session().ssid() < 1 || req->session().ssid() > 65535) {                       \
      return {grpc::StatusCode::INVALID_ARGUMENT, "session.ssid: must be 1 to 65535"};      \
    }                                                                                       \
    return FromStatus(stamp_->Call(*sender, static_cast<uint16_t>(req->session().ssid()))); \
  }
SEGWAN_SESSION_RPC(StartStampSession, Start)
SEGWAN_SESSION_RPC(StopStampSession, Stop)
SEGWAN_SESSION_RPC(DestroyStampSession, Destroy)
#undef SEGWAN_SESSION_RPC

namespace {
void ToProto(const stamp::Record& rec, pb::StampResult* o) {
  o->set_ssid(rec.ssid);
  o->set_sender_seq(rec.sender_seq);
  o->set_reflector_seq(rec.reflector_seq);
  o->set_t1_ns(rec.t1);
  o->set_t2_ns(rec.t2);
  o->set_t3_ns(rec.t3);
  o->set_t4_ns(rec.t4);
  o->set_sender_ttl(rec.sender_ttl);
  o->set_flags(rec.flags);
  o->set_t3_follow_up_ns(rec.t3_follow_up);
}
}  // namespace

grpc::Status EdgeService::GetStampSessionResults(grpc::ServerContext*,
                                                 const pb::GetStampSessionResultsRequest* req,
                                                 pb::GetStampSessionResultsResponse* out) {
  if (!stamp_) return kNoEngine;
  if (req->ssid() < 1 || req->ssid() > 65535) return {grpc::StatusCode::INVALID_ARGUMENT, "ssid: must be 1 to 65535"};
  auto r = stamp_->TakeResults(static_cast<uint16_t>(req->ssid()), req->max_results());
  if (!r) return ToGrpc(r.error());
  for (const auto& rec : r->records) ToProto(rec, out->add_results());
  out->set_dropped(r->dropped);
  out->set_packets_sent(r->sent);
  out->set_running(r->running);
  return grpc::Status::OK;
}

// Notification mode. The stream's thread moves the engine's records into the log every tick
// and sends what waits once a batch is full or its oldest record has waited max_delay; a
// second thread reads the acknowledgements. A newer stream (the controller reconnected, maybe
// over a half-open connection) replaces this one.
grpc::Status EdgeService::WatchStampResults(
    grpc::ServerContext* ctx, grpc::ServerReaderWriter<pb::StampResultBatch, pb::WatchStampResultsRequest>* stream) {
  using Clock = std::chrono::steady_clock;
  if (!stamp_) return kNoEngine;
  pb::WatchStampResultsRequest first;
  if (!stream->Read(&first)) return {grpc::StatusCode::CANCELLED, "the stream ended before its first message"};
  if (first.max_batch() > 4096) return {grpc::StatusCode::INVALID_ARGUMENT, "max_batch: must be 1 to 4096 (0 = 256)"};
  if (first.max_delay_ms() > 1000) return {grpc::StatusCode::INVALID_ARGUMENT, "max_delay_ms: must be 1 to 1000 (0 = 50)"};
  const size_t max_batch = first.max_batch() ? first.max_batch() : 256;
  const auto max_delay = std::chrono::milliseconds(first.max_delay_ms() ? first.max_delay_ms() : 50);
  const uint64_t me = ++stream_generation_;
  uint64_t sent = 0;  // the last cursor this stream sent
  if (first.log_id() == log_.id()) {
    log_.Ack(first.ack());
    sent = std::min(first.ack(), log_.last_cursor());  // a cursor from the future sends nothing
  }
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    pb::WatchStampResultsRequest ack;
    while (stream->Read(&ack)) {
      if (ack.log_id() == 0 || ack.log_id() == log_.id()) log_.Ack(ack.ack());
    }
    reader_done = true;
  });
  // The engine's queues are emptied a few times per batch delay, not more: each pass takes
  // the engine's lock and drains the XDP ring.
  const auto tick = std::clamp<std::chrono::milliseconds>(max_delay / 4, std::chrono::milliseconds(5),
                                                          std::chrono::milliseconds(50));
  constexpr auto kStatusEvery = std::chrono::seconds(1);
  auto last_status = Clock::now() - kStatusEvery;
  std::optional<Clock::time_point> waiting_since;  // when the oldest unsent entry was seen
  std::map<uint16_t, pb::StampSenderStatus> status;
  grpc::Status result = grpc::Status::OK;
  std::vector<stamp::ResultLog::Entry> entries;
  while (true) {
    if (streams_stopping_) {
      result = {grpc::StatusCode::UNAVAILABLE, "the agent is stopping"};
      break;
    }
    if (stream_generation_ != me) {
      result = {grpc::StatusCode::ABORTED, "replaced by a newer stream"};
      break;
    }
    if (ctx->IsCancelled() || reader_done) break;
    for (auto& [ssid, r] : stamp_->TakeAllResults()) {
      if (!r.records.empty() || r.dropped) log_.Append(ssid, r.records, r.dropped);
      auto& st = status[ssid];
      st.set_ssid(ssid);
      st.set_packets_sent(r.sent);
      st.set_running(r.running);
    }
    const auto now = Clock::now();
    const size_t waiting = log_.Waiting(sent);
    if (waiting && !waiting_since) waiting_since = now;
    const bool full = waiting >= max_batch, late = waiting && now - *waiting_since >= max_delay;
    const bool status_due = now - last_status >= kStatusEvery;
    if (full || late || status_due) {
      pb::StampResultBatch batch;
      batch.set_log_id(log_.id());
      entries.clear();
      log_.Read(sent, max_batch, &entries);
      std::set<uint16_t> in_batch;
      for (const auto& e : entries) {
        in_batch.insert(e.ssid);
        if (e.is_drop) {
          auto* d = batch.add_drops();
          d->set_cursor(e.cursor);
          d->set_ssid(e.ssid);
          d->set_count(e.dropped);
        } else {
          auto* o = batch.add_results();
          ToProto(e.record, o);
          o->set_cursor(e.cursor);
        }
        sent = e.cursor;
      }
      for (const auto& [ssid, st] : status) {
        if (status_due || in_batch.count(ssid)) *batch.add_senders() = st;
      }
      if (status_due) {
        last_status = now;
        status.clear();  // sessions destroyed meanwhile leave the list
      }
      if (!stream->Write(batch)) break;
      if (log_.Waiting(sent)) continue;  // more than one batch waits: no pause
      waiting_since.reset();
    }
    std::this_thread::sleep_for(tick);
  }
  ctx->TryCancel();  // ends the reader's Read
  reader.join();
  return result;
}

// ---- loss monitoring (alternate marking) ---------------------------------------------------
namespace {
const grpc::Status kNoLoss{grpc::StatusCode::FAILED_PRECONDITION,
                           "loss monitoring is not available on this edge (the agent could not load its programs)"};

// The flow and direction every loss RPC carries, checked by field.
Result<std::pair<std::vector<IpAddress>, loss::Direction>> LossFlow(const pb::LossFlow& flow, pb::LossDirection d) {
  auto segs = SidList("flow.segments", flow.segments(), true);
  if (!segs) return segs.error();
  if (d != pb::LOSS_DIRECTION_INGRESS && d != pb::LOSS_DIRECTION_EGRESS) {
    return FieldError("direction", "must be INGRESS or EGRESS");
  }
  return std::make_pair(*segs, d == pb::LOSS_DIRECTION_INGRESS ? loss::Direction::kIngress : loss::Direction::kEgress);
}
}  // namespace

grpc::Status EdgeService::StartLossMonitoring(grpc::ServerContext*, const pb::StartLossMonitoringRequest* req,
                                              pb::StartLossMonitoringResponse*) {
  auto f = LossFlow(req->flow(), req->direction());
  if (!f) return ToGrpc(f.error());
  if (!loss_) return kNoLoss;
  const auto period = req->period_ms() ? std::chrono::milliseconds(req->period_ms()) : loss::kDefaultPeriod;
  return FromStatus(loss_->Start(f->first, f->second, period));
}

grpc::Status EdgeService::StopLossMonitoring(grpc::ServerContext*, const pb::StopLossMonitoringRequest* req,
                                             pb::StopLossMonitoringResponse*) {
  auto f = LossFlow(req->flow(), req->direction());
  if (!f) return ToGrpc(f.error());
  if (!loss_) return kNoLoss;
  return FromStatus(loss_->Stop(f->first, f->second));
}

grpc::Status EdgeService::ReadLossCounters(grpc::ServerContext*, const pb::ReadLossCountersRequest* req,
                                           pb::ReadLossCountersResponse* out) {
  auto f = LossFlow(req->flow(), req->direction());
  if (!f) return ToGrpc(f.error());
  if (!loss_) return kNoLoss;
  auto c = loss_->Read(f->first, f->second);
  if (!c) return ToGrpc(c.error());
  for (uint32_t colour = 0; colour < 2; ++colour) {
    auto* x = out->add_counters();
    x->set_colour(colour);
    x->set_packets(c->packets[colour]);
    x->set_bytes(c->bytes[colour]);
  }
  out->set_active_colour(c->active_colour);
  out->set_colour_switched_at_ns(c->switched_at_ns);
  out->set_period_index(c->period_index);
  return grpc::Status::OK;
}

}  // namespace segwan::edge
