// The STAMP RPCs over real gRPC (in-process channel) with the user-space engine on real UDP
// sockets on ::1: one agent is both sender and reflector. No root needed, but for the one case
// that loads the XDP program (skipped without root).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>

#include "edge-manager/api/edge_service.h"
#include "edge-manager/stamp/xdp_stamp.h"
#include "fake_dataplane.h"

namespace segwan::edge {
namespace {

namespace pb = segwan::v1;
using namespace std::chrono_literals;

class StampServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    slices_ = std::make_unique<SliceManager>(&dp_, SliceMode::kTable, "sr0");
    service_ = std::make_unique<EdgeService>(&dp_, slices_.get(), InterfaceRoles{}, "", &engine_);
    grpc::ServerBuilder b;
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    stub_ = pb::EdgeManager::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
    port_ = 20000 + static_cast<uint32_t>(getpid() % 20000);
  }
  void TearDown() override {
    service_->StopStreams();
    server_->Shutdown();
  }

  grpc::Status InitReflector() {
    grpc::ClientContext ctx;
    pb::InitRequest req;
    req.set_role(pb::STAMP_ROLE_REFLECTOR);
    req.set_stamp_source_address("::1");
    req.set_reflector_udp_port(port_);
    pb::InitResponse resp;
    return stub_->Init(&ctx, req, &resp);
  }
  pb::StampSessionParams Params(uint32_t ssid) {
    pb::StampSessionParams p;
    p.set_ssid(ssid);
    p.set_source_address("::1");
    p.set_peer_address("::1");
    p.set_reflector_udp_port(port_);
    p.set_interval_ms(5);
    return p;
  }
  grpc::Status Create(pb::StampRole role, const pb::StampSessionParams& p) {
    grpc::ClientContext ctx;
    pb::CreateStampSessionRequest req;
    req.set_role(role);
    *req.mutable_params() = p;
    pb::CreateStampSessionResponse resp;
    return stub_->CreateStampSession(&ctx, req, &resp);
  }
  template <typename Req, typename Resp, typename Rpc>
  grpc::Status Session(Rpc rpc, pb::StampRole role, uint32_t ssid) {
    grpc::ClientContext ctx;
    Req req;
    req.mutable_session()->set_role(role);
    req.mutable_session()->set_ssid(ssid);
    Resp resp;
    return (stub_.get()->*rpc)(&ctx, req, &resp);
  }
  grpc::Status Start(pb::StampRole role, uint32_t ssid) {
    return Session<pb::StartStampSessionRequest, pb::StartStampSessionResponse>(
        &pb::EdgeManager::Stub::StartStampSession, role, ssid);
  }
  pb::GetStampSessionResultsResponse Results(uint32_t ssid, grpc::Status* st = nullptr) {
    grpc::ClientContext ctx;
    pb::GetStampSessionResultsRequest req;
    req.set_ssid(ssid);
    pb::GetStampSessionResultsResponse resp;
    auto s = stub_->GetStampSessionResults(&ctx, req, &resp);
    if (st) *st = s;
    return resp;
  }

  // A UDP socket on [::1]:port that waits 100 ms at most for a datagram.
  static int BoundToLoopback(uint32_t port) {
    const int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{0, 100'000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  }
  // A reflector made by hand on `fd` until `stop`: `answer` gets each unauthenticated test
  // packet, the reply a plain reflector would send (T2 = T3 = now), and where it came from.
  using Answer = std::function<void(const stamp::ParsedSender&, stamp::ReflectorPacket&, const sockaddr_in6&)>;
  static std::thread HandReflector(int fd, std::atomic<bool>& stop, Answer answer) {
    return std::thread([fd, &stop, answer] {
      uint8_t buf[256];
      while (!stop) {
        sockaddr_in6 from{};
        socklen_t flen = sizeof from;
        const ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 44) continue;
        auto in = stamp::ParseSender(std::span<const uint8_t>(buf, static_cast<size_t>(n)), stamp::Mode::kUnauthenticated);
        auto* s = std::get_if<stamp::ParsedSender>(&in);
        if (!s) continue;
        const uint64_t now = stamp::EncodeTimestamp(NowTaiNs(), stamp::TimestampFormat::kNtp, 0);
        stamp::ReflectorPacket r{.seq = s->packet.seq, .timestamp = now, .error_estimate = s->packet.error_estimate,
                                 .ssid = s->packet.ssid, .receive_timestamp = now, .sender_seq = s->packet.seq,
                                 .sender_timestamp = s->packet.timestamp,
                                 .sender_error_estimate = s->packet.error_estimate, .sender_ttl = 64};
        answer(*s, r, from);
      }
    });
  }

  netlink::FakeDataplane dp_;
  stamp::UserspaceEngine engine_{stamp::kDefaultResultQueue, true};  // with the ring where root
  std::unique_ptr<SliceManager> slices_;
  std::unique_ptr<EdgeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::EdgeManager::Stub> stub_;
  uint32_t port_ = 0;
};

TEST_F(StampServiceTest, SessionMeasuresAndResultsDrainOldestFirst) {
  ASSERT_TRUE(InitReflector().ok());
  ASSERT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, Params(9)).ok());
  auto p = Params(9);
  p.set_packet_count(20);
  ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_REFLECTOR, 9).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_SENDER, 9).ok());
  std::vector<pb::StampResult> all;
  for (int i = 0; i < 200 && all.size() < 20; ++i) {
    const auto r = Results(9);
    for (const auto& x : r.results()) all.push_back(x);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(all.size(), 20u);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& r = all[i];
    EXPECT_EQ(r.sender_seq(), i) << "oldest first, none twice";
    EXPECT_EQ(r.reflector_seq(), i);  // stateless
    EXPECT_LE(r.t1_ns(), r.t2_ns());  // one clock on loopback
    EXPECT_LE(r.t2_ns(), r.t3_ns());
    EXPECT_LE(r.t3_ns(), r.t4_ns());
    EXPECT_LT(r.t4_ns() - r.t1_ns(), 1'000'000'000u);
    EXPECT_EQ(r.sender_ttl(), 64u);
  }
  auto last = Results(9);
  EXPECT_EQ(last.results_size(), 0) << "returned records are removed";
  EXPECT_EQ(last.packets_sent(), 20u);
  EXPECT_FALSE(last.running()) << "the session stops after packet_count";
}

// Notification mode over real gRPC: a stream that is broken after some batches and opened
// again with the last cursor acknowledged brings every record exactly once, in order; drops
// would show as counts, and the sender's status comes along.
TEST_F(StampServiceTest, ResultStreamResumesAfterABreakWithNothingLostOrTwice) {
  ASSERT_TRUE(InitReflector().ok());
  ASSERT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, Params(12)).ok());
  auto p = Params(12);
  p.set_packet_count(60);
  ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_REFLECTOR, 12).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_SENDER, 12).ok());
  std::map<uint64_t, uint32_t> seq_by_cursor;
  uint64_t log_id = 0, stored = 0;
  uint64_t last_sent_status = 0;
  int duplicates = 0;
  // Takes batches until `want` records have arrived in all, acknowledging only up to
  // `ack_upto` of them (what a controller stored), then drops the connection (or, `graceful`,
  // closes its side and lets the agent finish).
  auto watch = [&](size_t want, size_t ack_upto, bool graceful) {
    grpc::ClientContext ctx;
    auto stream = stub_->WatchStampResults(&ctx);
    pb::WatchStampResultsRequest first;
    first.set_log_id(log_id);
    first.set_ack(stored);
    first.set_max_delay_ms(20);
    ASSERT_TRUE(stream->Write(first));
    pb::StampResultBatch b;
    for (int i = 0; i < 500 && seq_by_cursor.size() < want && stream->Read(&b); ++i) {
      log_id = b.log_id();
      for (const auto& r : b.results()) {
        if (!seq_by_cursor.emplace(r.cursor(), r.sender_seq()).second) ++duplicates;
        if (seq_by_cursor.size() <= ack_upto) stored = std::max(stored, r.cursor());
      }
      for (const auto& st : b.senders()) {
        if (st.ssid() == 12) last_sent_status = st.packets_sent();
      }
      pb::WatchStampResultsRequest ack;
      ack.set_log_id(log_id);
      ack.set_ack(stored);
      stream->Write(ack);
    }
    if (graceful) {
      stream->WritesDone();
      while (stream->Read(&b)) {
      }
    } else {
      ctx.TryCancel();
    }
    stream->Finish();
  };
  watch(25, 20, false);  // records 21..25 were received but not stored: they must come again
  ASSERT_GE(seq_by_cursor.size(), 25u);
  const size_t seen_first = seq_by_cursor.size();
  for (auto it = seq_by_cursor.begin(); it != seq_by_cursor.end();) {  // forget the unstored ones
    it = it->first > stored ? seq_by_cursor.erase(it) : std::next(it);
  }
  EXPECT_LT(seq_by_cursor.size(), seen_first);
  watch(60, 60, true);
  EXPECT_EQ(duplicates, 0) << "a resumed stream starts after the acknowledged cursor";
  ASSERT_EQ(seq_by_cursor.size(), 60u);
  uint32_t want = 0;
  uint64_t want_cursor = 1;
  for (const auto& [cursor, seq] : seq_by_cursor) {
    EXPECT_EQ(cursor, want_cursor++);
    EXPECT_EQ(seq, want++) << "every record once, in order";
  }
  EXPECT_GT(last_sent_status, 0u) << "sender status rides along";
  EXPECT_EQ(service_->result_log().size(), 0u) << "everything acknowledged is forgotten";
}

TEST_F(StampServiceTest, ANewerResultStreamReplacesTheOlderAndBadLimitsAreRefused) {
  grpc::ClientContext c1;
  auto s1 = stub_->WatchStampResults(&c1);
  ASSERT_TRUE(s1->Write(pb::WatchStampResultsRequest{}));
  pb::StampResultBatch b;
  ASSERT_TRUE(s1->Read(&b)) << "the first status batch comes at once";
  grpc::ClientContext c2;
  auto s2 = stub_->WatchStampResults(&c2);
  ASSERT_TRUE(s2->Write(pb::WatchStampResultsRequest{}));
  ASSERT_TRUE(s2->Read(&b));
  while (s1->Read(&b)) {
  }
  EXPECT_FALSE(s1->Finish().ok()) << "the older stream ends";
  c2.TryCancel();
  s2->Finish();

  // A resume point past the log's end (a confused controller) does not silence the stream.
  {
    grpc::ClientContext c;
    auto s = stub_->WatchStampResults(&c);
    pb::WatchStampResultsRequest ahead;
    ahead.set_log_id(b.log_id());
    ahead.set_ack(1'000'000);
    ASSERT_TRUE(s->Write(ahead));
    ASSERT_TRUE(InitReflector().ok());
    ASSERT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, Params(13)).ok());
    auto p = Params(13);
    p.set_packet_count(3);
    ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
    ASSERT_TRUE(Start(pb::STAMP_ROLE_REFLECTOR, 13).ok());
    ASSERT_TRUE(Start(pb::STAMP_ROLE_SENDER, 13).ok());
    int records = 0;
    for (int i = 0; i < 20 && records < 3 && s->Read(&b); ++i) records += b.results_size();
    EXPECT_EQ(records, 3);
    c.TryCancel();
    s->Finish();
  }

  grpc::ClientContext c3;
  auto s3 = stub_->WatchStampResults(&c3);
  pb::WatchStampResultsRequest bad;
  bad.set_max_batch(5000);
  ASSERT_TRUE(s3->Write(bad));
  EXPECT_FALSE(s3->Read(&b));
  const auto st = s3->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("max_batch"), std::string::npos) << st.error_message();
}

// An RFC 8762-only reflector (a few lines here: it knows no SSID and answers with 0). Its
// replies are taken by default and refused with reject_zero_ssid.
TEST_F(StampServiceTest, RepliesWithSsidZeroAreTakenUnlessRefused) {
  const int fd = BoundToLoopback(port_);
  ASSERT_GE(fd, 0);
  std::atomic<bool> stop{false};
  std::thread peer = HandReflector(fd, stop, [fd](const stamp::ParsedSender&, stamp::ReflectorPacket& r, const sockaddr_in6& from) {
    r.ssid = 0;  // an RFC 8762-only reflector
    const auto reply = stamp::BuildReflector(r, stamp::Mode::kUnauthenticated);
    sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&from), sizeof from);
  });
  auto run = [&](uint32_t ssid, bool reject) {
    auto p = Params(ssid);
    p.set_packet_count(10);
    p.set_engine(pb::STAMP_ENGINE_USERSPACE);
    p.set_reject_zero_ssid(reject);
    EXPECT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
    EXPECT_TRUE(Start(pb::STAMP_ROLE_SENDER, ssid).ok());
    std::this_thread::sleep_for(300ms);
    size_t got = 0;
    for (int i = 0; i < 5; ++i) got += static_cast<size_t>(Results(ssid).results_size());
    return got;
  };
  EXPECT_EQ(run(31, false), 10u) << "an RFC 8762 reflector's replies are measured";
  EXPECT_EQ(run(32, true), 0u) << "refused when the session says so";
  stop = true;
  peer.join();
  close(fd);
}

// RFC 8972 §3: a session is its addresses and ports with its SSID. A reply from another port
// (or address), whatever it says, is counted and dropped. Before, anyone who guessed the
// sender's port and SSID wrote its delays: here a forger answers every test packet too, with
// the right SSID and sequence number, from the next port.
TEST_F(StampServiceTest, RepliesFromAnywhereButTheReflectorAreNotMeasured) {
  const int fd = BoundToLoopback(port_), forger = BoundToLoopback(port_ + 1);
  ASSERT_GE(fd, 0);
  ASSERT_GE(forger, 0);
  std::atomic<bool> stop{false};
  std::thread peer = HandReflector(fd, stop, [fd, forger](const stamp::ParsedSender&, stamp::ReflectorPacket& r,
                                                          const sockaddr_in6& from) {
    // The forger first, with a receive time a second late: it would read as a 1 s delay.
    auto forged = r;
    forged.receive_timestamp = stamp::EncodeTimestamp(NowTaiNs() + 1'000'000'000, stamp::TimestampFormat::kNtp, 0);
    const auto fb = stamp::BuildReflector(forged, stamp::Mode::kUnauthenticated);
    sendto(forger, fb.data(), fb.size(), 0, reinterpret_cast<const sockaddr*>(&from), sizeof from);
    const auto reply = stamp::BuildReflector(r, stamp::Mode::kUnauthenticated);
    sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&from), sizeof from);
  });
  auto counter = [&]() -> uint64_t {
    for (const auto& [name, n] : engine_.Counters())
      if (name == "sender:reply-from-elsewhere") return n;
    return ~0ULL;
  };
  const uint64_t before = counter();
  auto p = Params(33);
  p.set_packet_count(10);
  p.set_engine(pb::STAMP_ENGINE_USERSPACE);
  ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_SENDER, 33).ok());
  std::this_thread::sleep_for(300ms);
  std::vector<pb::StampResult> got;
  for (int i = 0; i < 5; ++i) {
    const auto r = Results(33);
    got.insert(got.end(), r.results().begin(), r.results().end());
  }
  stop = true;
  peer.join();
  close(fd);
  close(forger);
  ASSERT_EQ(got.size(), 10u) << "one record per test packet: the reflector's reply";
  for (const auto& r : got) EXPECT_LT(r.t2_ns() - r.t1_ns(), 500'000'000u) << "a forged reply was measured";
  EXPECT_EQ(counter() - before, 10u) << "every forged reply counted";
}

TEST_F(StampServiceTest, AuthenticatedStatefulPtpSession) {
  ASSERT_TRUE(InitReflector().ok());
  auto p = Params(10);
  p.set_authentication_mode(pb::AUTHENTICATION_MODE_HMAC_SHA_256);
  p.mutable_auth_key()->set_key(std::string(32, 'k'));
  p.set_timestamp_format(pb::TIMESTAMP_FORMAT_PTPV2);
  auto rp = p;
  rp.set_reflector_mode(pb::SESSION_REFLECTOR_MODE_STATEFUL);
  ASSERT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, rp).ok());
  p.set_packet_count(5);
  ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_REFLECTOR, 10).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_SENDER, 10).ok());
  std::vector<pb::StampResult> all;
  for (int i = 0; i < 200 && all.size() < 5; ++i) {
    const auto r = Results(10);
    for (const auto& x : r.results()) all.push_back(x);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all.back().flags() & 1, 1u) << "authenticated and verified";
  EXPECT_LE(all.back().t1_ns(), all.back().t4_ns());
}

// RFC 8972 §4.7 end to end on loopback: a sender that asks for Follow-Up Telemetry gets, for
// each reply but the last, the time the reflector's kernel really sent it (a software transmit
// timestamp): after the T3 written into the reply, before the reply arrived. The last record
// is released without one when no further reply comes. A stateless reflector reports zeros.
TEST_F(StampServiceTest, FollowUpTelemetryGivesTheRealTransmitTime) {
  ASSERT_TRUE(InitReflector().ok());
  auto run = [&](uint32_t ssid, pb::SessionReflectorMode mode) {
    auto rp = Params(ssid);
    rp.set_reflector_mode(mode);
    EXPECT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, rp).ok());
    auto p = Params(ssid);
    p.set_packet_count(5);
    p.set_interval_ms(20);
    p.set_follow_up_telemetry(true);
    EXPECT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
    EXPECT_TRUE(Start(pb::STAMP_ROLE_REFLECTOR, ssid).ok());
    EXPECT_TRUE(Start(pb::STAMP_ROLE_SENDER, ssid).ok());
    std::vector<pb::StampResult> all;
    for (int i = 0; i < 300 && all.size() < 5; ++i) {  // the last one after about a second
      const auto r = Results(ssid);
      for (const auto& x : r.results()) all.push_back(x);
      std::this_thread::sleep_for(10ms);
    }
    return all;
  };
  const auto stateful = run(41, pb::SESSION_REFLECTOR_MODE_STATEFUL);
  ASSERT_EQ(stateful.size(), 5u);
  for (size_t i = 0; i + 1 < stateful.size(); ++i) {
    const auto& x = stateful[i];
    ASSERT_NE(x.t3_follow_up_ns(), 0u) << i;
    EXPECT_GE(x.t3_follow_up_ns(), x.t3_ns()) << i << ": after the T3 written into it";
    EXPECT_LE(x.t3_follow_up_ns(), x.t4_ns()) << i << ": before it arrived";
  }
  EXPECT_EQ(stateful.back().t3_follow_up_ns(), 0u) << "no later reply to carry it";

  const auto stateless = run(42, pb::SESSION_REFLECTOR_MODE_STATELESS);
  ASSERT_EQ(stateless.size(), 5u);
  for (const auto& x : stateless) EXPECT_EQ(x.t3_follow_up_ns(), 0u);

  auto p = Params(43);
  p.set_follow_up_telemetry(true);
  p.set_engine(pb::STAMP_ENGINE_EBPF);
  const auto st = Create(pb::STAMP_ROLE_SENDER, p);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("follow_up_telemetry"), std::string::npos) << st.error_message();
}

// RFC 8762 §4.2.1 / RFC 4656 §4.1.2: the reflector's Error Estimate says what the kernel says
// of the clock (adjtimex): S set only when a time daemon keeps it synchronised, and an error
// that covers the kernel's estimate (its maximum error when not synchronised). Before: S clear
// and 1 µs always, whatever the clock. A test packet from a plain socket reads the reply.
TEST_F(StampServiceTest, ErrorEstimateSaysWhatTheKernelSaysOfTheClock) {
  ASSERT_TRUE(InitReflector().ok());
  ASSERT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, Params(51)).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_REFLECTOR, 51).ok());
  const int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_addr = in6addr_loopback;
  to.sin6_port = htons(static_cast<uint16_t>(port_));
  const auto req = stamp::BuildSender({.seq = 1, .ssid = 51, .tlvs = {stamp::TimestampInfoTlv()}}, stamp::Mode::kUnauthenticated);
  ASSERT_EQ(sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to), static_cast<ssize_t>(req.size()));
  uint8_t buf[256];
  const ssize_t n = recv(fd, buf, sizeof buf, 0);
  close(fd);
  ASSERT_EQ(n, static_cast<ssize_t>(req.size()));
  auto parsed = stamp::ParseReflector(std::span<const uint8_t>(buf, static_cast<size_t>(n)), stamp::Mode::kUnauthenticated);
  ASSERT_TRUE(std::holds_alternative<stamp::ReflectorPacket>(parsed));
  const auto& reply = std::get<stamp::ReflectorPacket>(parsed);
  const ClockSync clock = ReadClockSync();
  const auto ee = stamp::ErrorEstimate::Decode(reply.error_estimate);
  std::cout << "clock: synchronised " << clock.synchronized << ", error " << clock.error_ns << " ns\n";
  EXPECT_EQ(ee.synchronized, clock.synchronized);
  EXPECT_GE(ee.Seconds() * 1e9, static_cast<double>(clock.error_ns) * 0.999);
  EXPECT_LE(ee.Seconds() * 1e9, static_cast<double>(clock.error_ns) * 2.0) << "the smallest estimate that covers it";
  ASSERT_EQ(reply.tlvs.size(), 1u);
  EXPECT_EQ(reply.tlvs[0].value[0], clock.synchronized ? stamp::kSyncNtp : stamp::kSyncFreeRunning) << "sync source of T2";
  EXPECT_EQ(reply.tlvs[0].value[1], stamp::kMethodSoftware) << "T2: the kernel's software receive timestamp";
}

// With the AF_PACKET ring (root), base test packets are answered from the ring, each exactly
// once (the UDP socket's filter leaves them to the ring), with a valid checksum; a reply that
// must take another way (an RFC 9503 Return Address) goes through the socket.
TEST_F(StampServiceTest, TheRingAnswersEachTestPacketOnce) {
  if (geteuid() != 0) GTEST_SKIP() << "an AF_PACKET ring needs CAP_NET_RAW";
  ASSERT_TRUE(InitReflector().ok());
  auto counter = [&](const std::string& name) -> int64_t {
    for (const auto& [n, v] : engine_.Counters()) {
      if (n == name) return static_cast<int64_t>(v);
    }
    return -1;
  };
  ASSERT_GE(counter("ring:reflected"), 0) << "no ring was opened";
  ASSERT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, Params(61)).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_REFLECTOR, 61).ok());
  const int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  timeval tv{0, 300'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_addr = in6addr_loopback;
  to.sin6_port = htons(static_cast<uint16_t>(port_));
  const int64_t before = counter("ring:reflected");
  auto send = [&](const std::vector<uint8_t>& p) {
    ASSERT_EQ(sendto(fd, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to), static_cast<ssize_t>(p.size()));
  };
  for (uint32_t i = 0; i < 20; ++i) send(stamp::BuildSender({.seq = i, .ssid = 61}, stamp::Mode::kUnauthenticated));
  send(stamp::BuildSender({.seq = 20, .ssid = 61, .tlvs = {stamp::LocationRequestTlv()}}, stamp::Mode::kUnauthenticated));
  IpAddress loopback{AF_INET6, {}};
  loopback.bytes[15] = 1;
  send(stamp::BuildSender({.seq = 21, .ssid = 61, .tlvs = {stamp::ReturnPathControlCodeTlv(1)}}, stamp::Mode::kUnauthenticated));
  std::map<uint32_t, int> replies;
  uint8_t buf[512];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    auto r = stamp::ParseReflector(std::span<const uint8_t>(buf, static_cast<size_t>(n)), stamp::Mode::kUnauthenticated);
    if (auto* p = std::get_if<stamp::ReflectorPacket>(&r)) ++replies[p->sender_seq];
  }
  close(fd);
  EXPECT_EQ(replies.size(), 22u);
  for (const auto& [seq, n] : replies) EXPECT_EQ(n, 1) << "seq " << seq << " answered " << n << " times";
  EXPECT_EQ(counter("ring:reflected") - before, 22) << "all of them from the ring";
  EXPECT_EQ(counter("ring:refused"), 0);
}

TEST_F(StampServiceTest, UnstartedReflectorSessionDoesNotAnswer) {
  ASSERT_TRUE(InitReflector().ok());
  ASSERT_TRUE(Create(pb::STAMP_ROLE_REFLECTOR, Params(11)).ok());
  auto p = Params(11);
  p.set_packet_count(3);
  ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
  ASSERT_TRUE(Start(pb::STAMP_ROLE_SENDER, 11).ok());
  std::this_thread::sleep_for(200ms);
  auto r = Results(11);
  EXPECT_EQ(r.results_size(), 0);
  EXPECT_EQ(r.packets_sent(), 3u);
  // and the reflector says why, through GetState
  grpc::ClientContext ctx;
  pb::GetStateResponse state;
  ASSERT_TRUE(stub_->GetState(&ctx, {}, &state).ok());
  uint64_t unknown = ~0ULL;
  for (const auto& c : state.stamp_counters()) {
    if (c.name() == "userspace:unknown-session") unknown = c.value();
  }
  EXPECT_EQ(unknown, 3u);
}

TEST_F(StampServiceTest, BadRequestsAreRefusedByField) {
  struct Case {
    std::function<void(pb::StampSessionParams&)> mutate;
    std::string field;
  } cases[] = {
      {[](auto& p) { p.set_ssid(0); }, "params.ssid"},
      {[](auto& p) { p.set_ssid(70000); }, "params.ssid"},
      {[](auto& p) { p.add_segments("not-a-sid"); }, "params.segments[0]"},
      {[](auto& p) { for (int i = 0; i < 17; ++i) p.add_segments("fc00::1"); }, "params.segments"},
      {[](auto& p) { p.set_interval_ms(60001); }, "params.interval_ms"},
      {[](auto& p) { p.set_source_address("10.0.0.1"); }, "params.source_address"},
      {[](auto& p) { p.set_peer_address(""); }, "params.peer_address"},
      {[](auto& p) { p.set_reflector_udp_port(70000); }, "params.reflector_udp_port"},
      {[](auto& p) { p.set_authentication_mode(pb::AUTHENTICATION_MODE_HMAC_SHA_256); }, "params.auth_key.key"},
      {[](auto& p) { p.set_delay_mode(pb::DELAY_MEASUREMENT_MODE_LOOPBACK); }, "params.delay_mode"},
      {[](auto& p) { p.add_return_path_segments("x"); }, "params.return_path_segments[0]"},
      {[](auto& p) { p.set_padding_bytes(5000); }, "params.padding_bytes"},
  };
  for (const auto& c : cases) {
    auto p = Params(12);
    c.mutate(p);
    auto st = Create(pb::STAMP_ROLE_SENDER, p);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field << ": " << st.error_message();
    EXPECT_EQ(st.error_message().rfind(c.field, 0), 0u) << st.error_message();
  }
  EXPECT_FALSE(engine_.Has(true, 12)) << "a refused request created a session";
  EXPECT_EQ(Create(pb::STAMP_ROLE_UNSPECIFIED, Params(12)).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto ebpf = Params(12);
  ebpf.set_engine(pb::STAMP_ENGINE_EBPF);
  EXPECT_EQ(Create(pb::STAMP_ROLE_SENDER, ebpf).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// With the XDP program loaded (no interface needed to hold its maps), a sender session that asks
// for the eBPF engine gets the collector, or is refused by field and leaves nothing behind.
TEST_F(StampServiceTest, EbpfSenderIsCollectedInXdpOrRefusedWithoutTrace) {
  if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
  auto x = stamp::XdpStamp::Load();
  if (!x) GTEST_SKIP() << x.error().message;
  engine_.UseEbpf(x->get());
  auto p = Params(15);
  p.set_engine(pb::STAMP_ENGINE_EBPF);
  grpc::ClientContext ctx;
  pb::CreateStampSessionRequest req;
  req.set_role(pb::STAMP_ROLE_SENDER);
  *req.mutable_params() = p;
  pb::CreateStampSessionResponse resp;
  ASSERT_TRUE(stub_->CreateStampSession(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.engine(), pb::STAMP_ENGINE_EBPF);
  EXPECT_TRUE(engine_.SenderInXdp(15));
  // No source address: replies have nothing for XDP to match them by.
  p.set_ssid(16);
  p.set_source_address("::");
  auto st = Create(pb::STAMP_ROLE_SENDER, p);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(st.error_message().rfind("params.engine", 0), 0u) << st.error_message();
  EXPECT_FALSE(engine_.Has(true, 16)) << "a refused request created a session";
  // The same without asking for eBPF: the socket collects.
  p.clear_engine();
  ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, p).ok());
  EXPECT_FALSE(engine_.SenderInXdp(16));
  engine_.Reset(true);
  engine_.UseEbpf(nullptr);
}

TEST_F(StampServiceTest, LifecycleErrorsHaveTheirCodes) {
  ASSERT_TRUE(Create(pb::STAMP_ROLE_SENDER, Params(13)).ok());
  EXPECT_EQ(Create(pb::STAMP_ROLE_SENDER, Params(13)).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Start(pb::STAMP_ROLE_SENDER, 14).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Start(pb::STAMP_ROLE_REFLECTOR, 13).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status st;
  Results(14, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  auto destroy = [&](uint32_t ssid) {
    return Session<pb::DestroyStampSessionRequest, pb::DestroyStampSessionResponse>(
        &pb::EdgeManager::Stub::DestroyStampSession, pb::STAMP_ROLE_SENDER, ssid);
  };
  EXPECT_TRUE(destroy(13).ok());
  EXPECT_EQ(destroy(13).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(engine_.Has(true, 13));
}

}  // namespace
}  // namespace segwan::edge
