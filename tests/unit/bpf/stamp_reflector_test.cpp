// The XDP STAMP reflector through BPF_PROG_TEST_RUN, from a table of frames: verdicts, output
// bytes (parsed with the shared wire codec), checksums, SRH rewrites, reason counters.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <array>
#include <map>

#include "edge-manager/stamp/wire.h"
#include "packet.h"
#include "segwan_stamp.h"
#include "stamp_xdp.skel.h"

namespace segwan::testing {
namespace {

using stamp::BuildSender;
using stamp::Mode;

const IpAddress kSender = *ParseIp("fc00:0:a::1");
const IpAddress kLocal = *ParseIp("fc00:0:b::1");
const IpAddress kP1 = *ParseIp("fc00:0:1::e");
const IpAddress kP2 = *ParseIp("fc00:0:2::e");
constexpr uint16_t kPort = 862;

static_assert(sizeof(stamp_reflector_session) == 56 + 16 * STAMP_MAX_SEGS);

uint64_t NowTai() {
  timespec ts;
  clock_gettime(CLOCK_TAI, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

const std::array<uint8_t, 6> kMacA0{2, 0, 0, 0, 0x0a, 0}, kNextHopA{2, 0, 0, 0, 0x0a, 1};
const std::array<uint8_t, 6> kMacB0{2, 0, 0, 0, 0x0b, 0}, kNextHopB{2, 0, 0, 0, 0x0b, 1};

class StampReflector : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    netns_ = EnterReflectorNetns();
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
    if (!netns_.error.empty()) GTEST_SKIP() << netns_.error;
    skel_ = stamp_xdp__open_and_load();
    ASSERT_TRUE(skel_) << "the kernel refused the reflector (see the verifier log above)";
    stamp_listener_key l{};
    std::memcpy(l.addr, kLocal.bytes.data(), 16);
    l.port = kPort;
    uint32_t one = 1;
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.stamp_listeners, &l, sizeof l, &one, sizeof one, BPF_ANY), 0);
    skel_->bss->stamp_port_bits[kPort >> 6] |= 1ULL << (kPort & 63);
    skel_->bss->tai_utc_offset_s = 37;  // as adjtimex would say on a real host
  }
  void TearDown() override {
    if (skel_) stamp_xdp__destroy(skel_);
  }
  // Slots are handed out in order, as the agent's loader does.
  void AddSession(uint16_t ssid, uint32_t flags, std::vector<IpAddress> segs) {
    const uint32_t slot = next_slot_++, key = ssid, slot1 = slot + 1;
    stamp_reflector_session s{};
    std::memcpy(s.addr, kLocal.bytes.data(), 16);
    s.port = kPort;
    s.ssid = ssid;
    s.flags = flags;
    s.error_estimate = htons(0x8587);
    s.nsegs = static_cast<uint8_t>(segs.size());
    for (size_t i = 0; i < segs.size(); ++i) std::memcpy(s.segs[i], segs[i].bytes.data(), 16);
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.stamp_sessions, &slot, sizeof slot, &s, sizeof s, BPF_ANY), 0);
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.stamp_ssid_slots, &key, sizeof key, &slot1, sizeof slot1, BPF_ANY), 0);
    slots_[ssid] = slot;
  }
  std::map<uint16_t, uint32_t> slots_;
  uint32_t next_slot_ = 0;
  // Frames arrive on a0, the link towards the senders.
  RunResult Run(const std::vector<uint8_t>& frame) {
    auto r = RunXdp(bpf_program__fd(skel_->progs.stamp_xdp), frame, 1, netns_.a0);
    EXPECT_TRUE(r);
    return r ? *r : RunResult{};
  }
  uint64_t AllReasons() {
    uint64_t sum = 0;
    for (int r = 0; r < STAMP_REASON_MAX; ++r) sum += Reason(static_cast<stamp_reason>(r));
    return sum;
  }
  uint64_t Reason(stamp_reason r) {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> v(static_cast<size_t>(ncpu));
    uint32_t key = r;
    if (bpf_map__lookup_elem(skel_->maps.stamp_reasons, &key, sizeof key, v.data(), v.size() * 8, 0)) return ~0ULL;
    uint64_t sum = 0;
    for (auto x : v) sum += x;
    return sum;
  }
  stamp_xdp* skel_ = nullptr;
  static ReflectorNetns netns_;
};
ReflectorNetns StampReflector::netns_;

std::vector<uint8_t> TestPacket(uint32_t seq, uint16_t ssid, std::vector<stamp::Tlv> tlvs = {}) {
  return BuildSender({.seq = seq, .timestamp = 0x1122334455667788ULL, .error_estimate = 0x4001,
                      .ssid = ssid, .tlvs = std::move(tlvs)},
                     Mode::kUnauthenticated);
}

FrameSpec To(std::vector<uint8_t> payload) {
  return FrameSpec{.src = kSender, .dst = kLocal, .hop_limit = 61, .sport = 40000, .dport = kPort,
                   .payload = std::move(payload)};
}

IpAddress At(const std::vector<uint8_t>& f, size_t off) {
  IpAddress a{AF_INET6, {}};
  std::memcpy(a.bytes.data(), &f[off], 16);
  return a;
}

stamp::ReflectorPacket Reply(const std::vector<uint8_t>& out) {
  const size_t u = UdpOffset(out);
  EXPECT_NE(u, 0u);
  auto p = stamp::ParseReflector(std::span(out).subspan(u + 8), Mode::kUnauthenticated);
  EXPECT_TRUE(std::holds_alternative<stamp::ReflectorPacket>(p));
  return std::holds_alternative<stamp::ReflectorPacket>(p) ? std::get<stamp::ReflectorPacket>(p) : stamp::ReflectorPacket{};
}

TEST_F(StampReflector, ReflectsWithoutSrh) {
  AddSession(7, 0, {});
  const auto in = BuildFrame(To(TestPacket(41, 7)));
  const uint64_t before = NowTai();
  const auto r = Run(in);
  ASSERT_EQ(r.retval, XDP_TX) << "the sender is reached through the link it came from";
  const auto& out = r.out;
  ASSERT_EQ(out.size(), in.size());
  EXPECT_TRUE(std::equal(kNextHopA.begin(), kNextHopA.end(), out.begin())) << "next hop's MAC";
  EXPECT_TRUE(std::equal(kMacA0.begin(), kMacA0.end(), out.begin() + 6)) << "a0's MAC";
  EXPECT_EQ(At(out, 22), kLocal);
  EXPECT_EQ(At(out, 38), kSender);
  EXPECT_EQ(out[20], 17);
  EXPECT_EQ(out[21], 64) << "a fresh hop limit";
  const size_t u = UdpOffset(out);
  EXPECT_EQ(out[u] << 8 | out[u + 1], kPort);
  EXPECT_EQ(out[u + 2] << 8 | out[u + 3], 40000);
  EXPECT_TRUE(UdpChecksumOk(out));
  const auto p = Reply(out);
  EXPECT_EQ(p.seq, 41u) << "stateless: the sender's number";
  EXPECT_EQ(p.ssid, 7);
  EXPECT_EQ(p.sender_seq, 41u);
  EXPECT_EQ(p.sender_timestamp, 0x1122334455667788ULL);
  EXPECT_EQ(p.sender_error_estimate, 0x4001);
  EXPECT_EQ(p.sender_ttl, 61);
  EXPECT_EQ(p.error_estimate, 0x8587);
  const int32_t off = 37;  // NTP is UTC: TAI minus the offset the agent wrote
  const uint64_t t2 = stamp::DecodeTimestamp(p.receive_timestamp, stamp::TimestampFormat::kNtp, off);
  const uint64_t t3 = stamp::DecodeTimestamp(p.timestamp, stamp::TimestampFormat::kNtp, off);
  EXPECT_GE(t2 + 1000, before);  // NTP rounds to 0.23 ns
  EXPECT_LE(t2, t3);
  EXPECT_LE(t3, NowTai() + 1000);
  EXPECT_EQ(Reason(STAMP_TX_REFLECTED), 1u);
}

// The checksum is updated from what changes only: every reply must still verify, whatever
// the sender put in its fields and in the bytes that must be zero (not trusted to be).
TEST_F(StampReflector, EveryReplyHasAValidChecksum) {
  AddSession(7, 0, {});
  AddSession(8, STAMP_F_STATEFUL, {kP2});
  uint64_t x = 0x243f6a8885a308d3ULL;
  auto next = [&x] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
  for (int i = 0; i < 400; ++i) {
    const uint16_t ssid = i % 2 ? 8 : 7;
    auto payload = BuildSender({.seq = static_cast<uint32_t>(next()), .timestamp = next(),
                                .error_estimate = static_cast<uint16_t>(next()), .ssid = ssid},
                               Mode::kUnauthenticated);
    for (size_t b = 16; b < payload.size(); ++b) payload[b] = i % 3 ? static_cast<uint8_t>(next()) : 0;
    FrameSpec spec = To(payload);
    spec.hop_limit = static_cast<uint8_t>(next() | 1);
    // any port for the stateless session; the stateful one's counter is one sender's
    spec.sport = ssid == 7 ? static_cast<uint16_t>(next() | 1024) : 40000;
    const auto r = Run(BuildFrame(spec));
    ASSERT_EQ(r.retval, ssid == 7 ? XDP_TX : XDP_REDIRECT) << "packet " << i;
    ASSERT_TRUE(UdpChecksumOk(r.out)) << "packet " << i;
    const auto p = Reply(r.out);
    ASSERT_EQ(p.sender_ttl, spec.hop_limit);
    ASSERT_EQ(p.sender_seq, (static_cast<uint32_t>(payload[0]) << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]);
  }
}

// Random frames, built with a right checksum from random parts (SRHs of 0-4 segments and any
// Segments Left, ports, TTLs, STAMP payloads of any length with random TLV areas and mutated
// bytes) and also with bytes mutated after the checksum: whatever the program reflects is a
// right reply, and nothing makes it abort. Every reply: a checksum that adds up, lengths that
// agree, the test packet's sequence number and TTL, the session's return path. 200,000 frames.
TEST_F(StampReflector, RandomFramesAreReflectedRightOrNotAtAll) {
  AddSession(7, 0, {});
  AddSession(8, STAMP_F_STATEFUL, {kP2});
  AddSession(9, 0, {kP1, kP2});
  const std::map<uint16_t, std::vector<IpAddress>> ret = {{7, {}}, {8, {kP2}}, {9, {kP1, kP2}}};
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto next = [&x] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
  auto below = [&](uint64_t n) { return static_cast<size_t>(next() % n); };
  const IpAddress addrs[] = {kLocal, kP1, kP2, kSender, *ParseIp("fe80::1"), *ParseIp("ff02::1")};
  int reflected = 0, raw_mutations = 0;
  constexpr int kFrames = 200000;
  for (int i = 0; i < kFrames; ++i) {
    const uint16_t ssid = static_cast<uint16_t>(7 + below(4));  // 10: no session
    auto payload = BuildSender({.seq = static_cast<uint32_t>(next()), .timestamp = next(),
                                .error_estimate = static_cast<uint16_t>(next()), .ssid = ssid},
                               Mode::kUnauthenticated);
    switch (below(4)) {  // the payload: base, cut, TLV-like tail, or mutated
      case 0: break;
      case 1: payload.resize(below(payload.size() + 1)); break;
      case 2:
        for (size_t n = below(40); n; --n) payload.push_back(static_cast<uint8_t>(next()));
        break;
      default:
        for (size_t n = 1 + below(4); n; --n) payload[below(payload.size())] = static_cast<uint8_t>(next());
    }
    FrameSpec spec = To(payload);
    spec.hop_limit = static_cast<uint8_t>(next());
    spec.traffic_class = static_cast<uint8_t>(next());
    if (below(4) == 0) spec.sport = static_cast<uint16_t>(next());
    if (below(8) == 0) spec.dport = static_cast<uint16_t>(861 + below(3));
    if (below(2) == 0) {
      spec.srh_segments.push_back(kLocal);
      for (size_t n = below(4); n; --n) spec.srh_segments.push_back(addrs[below(std::size(addrs))]);
      spec.segments_left = static_cast<uint8_t>(below(3) == 0 ? below(spec.srh_segments.size() + 1) : 0);
    }
    auto frame = BuildFrame(spec);
    if (below(4) == 0) {  // bytes changed after the checksum, headers included
      ++raw_mutations;
      for (size_t n = 1 + below(3); n; --n) frame[below(frame.size())] = static_cast<uint8_t>(next());
    }
    if (below(16) == 0) frame.resize(14 + below(frame.size() - 13));  // BPF_PROG_TEST_RUN takes 14 bytes at least
    const auto r = Run(frame);
    SCOPED_TRACE("frame " + std::to_string(i));
    ASSERT_NE(r.retval, XDP_ABORTED);
    if (r.retval != XDP_TX && r.retval != XDP_REDIRECT) continue;
    ++reflected;
    const auto& out = r.out;
    const size_t u = UdpOffset(out);
    ASSERT_NE(u, 0u);
    ASSERT_TRUE(UdpChecksumOk(out));
    ASSERT_EQ(out.size(), u + 8 + stamp::kUnauthenticatedLength) << "a base packet in, a base packet out";
    ASSERT_EQ((out[u + 4] << 8 | out[u + 5]), static_cast<int>(8 + stamp::kUnauthenticatedLength)) << "UDP length";
    ASSERT_EQ(static_cast<size_t>(out[18] << 8 | out[19]), out.size() - 54) << "IPv6 payload length";
    ASSERT_EQ(At(out, 22), kLocal);
    const uint16_t rssid = static_cast<uint16_t>(out[u + 8 + 14] << 8 | out[u + 8 + 15]);
    ASSERT_TRUE(ret.count(rssid)) << "a reply for an SSID without a session";
    const auto& segs = ret.at(rssid);
    // fc00:0:2::/48 (p2) is reached through b0, everything else here through a0, where it came in
    ASSERT_EQ(r.retval, !segs.empty() && segs[0] == kP2 ? XDP_REDIRECT : XDP_TX);
    ASSERT_EQ(u, 54 + (segs.empty() ? 0 : 8 + 16 * (segs.size() + 1)));
    ASSERT_EQ(At(out, 38), segs.empty() ? kSender : segs[0]);
    // The test packet as it went in (the frame may have been mutated after building)
    const size_t in_u = UdpOffset(frame);
    ASSERT_NE(in_u, 0u);
    ASSERT_TRUE(UdpChecksumOkAsReceived(frame)) << "reflected with a checksum that does not add up";
    ASSERT_EQ(static_cast<size_t>(frame[18] << 8 | frame[19]), frame.size() - 54) << "reflected with a lying IPv6 length";
    const auto p = Reply(out);
    ASSERT_EQ(p.sender_seq, (static_cast<uint32_t>(frame[in_u + 8]) << 24) | (frame[in_u + 9] << 16) |
                                (frame[in_u + 10] << 8) | frame[in_u + 11]);
    ASSERT_EQ(p.sender_ttl, frame[21]);
  }
  std::printf("{\"random_frames\": %d, \"reflected\": %d, \"mutated_after_checksum\": %d}\n", kFrames, reflected,
              raw_mutations);
  EXPECT_GT(reflected, kFrames / 10) << "too few reflected for the check to mean much";
}

TEST_F(StampReflector, ReplacesTheSrhWithTheReturnPath) {
  struct Case {
    const char* what;
    std::vector<IpAddress> in_segs;   // SRH as received (segments[0] = us), empty = none
    std::vector<IpAddress> ret;       // the session's return waypoints
  } cases[] = {
      {"none -> one waypoint (grow)", {}, {kP2}},
      {"two -> one (shrink)", {kLocal, kP1, *ParseIp("fc00:0:3::e")}, {kP2}},
      {"one -> three (grow)", {kLocal, kP1}, {kP2, *ParseIp("fc00:0:4::e"), *ParseIp("fc00:0:5::e")}},
      {"one -> none (shrink to no SRH)", {kLocal, kP1}, {}},
      {"twelve waypoints (the most XDP headroom allows from no SRH)", {}, std::vector<IpAddress>(12, kP2)},
  };
  uint16_t ssid = 100;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    AddSession(ssid, 0, c.ret);
    FrameSpec spec = To(TestPacket(1, ssid));
    spec.srh_segments = c.in_segs;
    const auto in = BuildFrame(spec);
    const auto r = Run(in);
    // A return path through p2 leaves by b0: the FIB says so, and the frame is redirected.
    ASSERT_EQ(r.retval, c.ret.empty() ? XDP_TX : XDP_REDIRECT);
    const auto& out = r.out;
    const auto& next_hop = c.ret.empty() ? kNextHopA : kNextHopB;
    const auto& own = c.ret.empty() ? kMacA0 : kMacB0;
    EXPECT_TRUE(std::equal(next_hop.begin(), next_hop.end(), out.begin()));
    EXPECT_TRUE(std::equal(own.begin(), own.end(), out.begin() + 6));
    const size_t srh = c.ret.empty() ? 0 : 8 + 16 * (c.ret.size() + 1);
    ASSERT_EQ(out.size(), 14 + 40 + srh + 8 + 44u);
    EXPECT_EQ(At(out, 22), kLocal);
    if (c.ret.empty()) {
      EXPECT_EQ(out[20], 17);
      EXPECT_EQ(At(out, 38), kSender);
    } else {
      EXPECT_EQ(out[20], 43);
      EXPECT_EQ(At(out, 38), c.ret[0]) << "the first waypoint is the destination";
      const size_t h = 54;
      EXPECT_EQ(out[h], 17);
      EXPECT_EQ(out[h + 1], 2 * (c.ret.size() + 1));
      EXPECT_EQ(out[h + 2], 4);
      EXPECT_EQ(out[h + 3], c.ret.size()) << "Segments Left";
      EXPECT_EQ(out[h + 4], c.ret.size()) << "Last Entry";
      EXPECT_EQ(At(out, h + 8), kSender) << "segments[0] is the final destination";
      for (size_t i = 0; i < c.ret.size(); ++i) {
        EXPECT_EQ(At(out, h + 8 + 16 * (c.ret.size() - i)), c.ret[i]) << "waypoint " << i;
      }
    }
    EXPECT_EQ((out[18] << 8 | out[19]), static_cast<int>(srh + 8 + 44)) << "payload length";
    EXPECT_TRUE(UdpChecksumOk(out));
    EXPECT_EQ(Reply(out).sender_seq, 1u);
    ++ssid;
  }
}

TEST_F(StampReflector, ReturnPathLongerThanTheHeadroomGoesToUserSpaceUntouched) {
  AddSession(11, STAMP_F_STATEFUL, std::vector<IpAddress>(16, kP2));
  const auto in = BuildFrame(To(TestPacket(5, 11)));
  const auto r = Run(in);
  EXPECT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(Reason(STAMP_PASS_NO_HEADROOM), 1u);
  // the stateful counter did not move: the user-space engine answers this one
  const uint32_t slot = slots_.at(11);
  stamp_reflector_session s{};
  ASSERT_EQ(bpf_map__lookup_elem(skel_->maps.stamp_sessions, &slot, sizeof slot, &s, sizeof s, 0), 0);
  EXPECT_EQ(s.next_seq, 0u);
}

TEST_F(StampReflector, StatefulCountsAndPtp) {
  AddSession(9, STAMP_F_STATEFUL | STAMP_F_PTP, {});
  for (uint32_t i = 0; i < 3; ++i) {
    const auto r = Run(BuildFrame(To(TestPacket(100 + i * 5, 9))));
    ASSERT_EQ(r.retval, XDP_TX);
    const auto p = Reply(r.out);
    EXPECT_EQ(p.seq, i);
    EXPECT_EQ(p.sender_seq, 100 + i * 5);
    const uint64_t t2 = stamp::DecodeTimestamp(p.receive_timestamp, stamp::TimestampFormat::kPtp, 0);
    EXPECT_LT(t2 > NowTai() ? t2 - NowTai() : NowTai() - t2, 1'000'000'000u) << "PTP is TAI";
    EXPECT_EQ(p.receive_timestamp & 0xffffffffULL, t2 % 1'000'000'000ULL) << "nanoseconds field";
  }
}

// User space (answering what XDP passed up) and XDP number one sequence: the session array is
// mmapable and the agent takes numbers from the same counter.
TEST_F(StampReflector, StatefulCounterIsSharedWithUserSpaceThroughTheMappedArray) {
  AddSession(9, STAMP_F_STATEFUL, {});
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t len = (sizeof(stamp_reflector_session) * STAMP_MAX_SESSIONS + page - 1) / page * page;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(skel_->maps.stamp_sessions), 0);
  ASSERT_NE(m, MAP_FAILED) << "the session array is not mmapable";
  auto* sessions = static_cast<stamp_reflector_session*>(m);
  EXPECT_EQ(Reply(Run(BuildFrame(To(TestPacket(0, 9)))).out).seq, 0u);            // XDP
  EXPECT_EQ(__atomic_fetch_add(&sessions[slots_[9]].next_seq, 1, __ATOMIC_RELAXED), 1u);  // user space
  EXPECT_EQ(Reply(Run(BuildFrame(To(TestPacket(2, 9)))).out).seq, 2u);            // XDP again
  munmap(m, len);
}

// RFC 8972 §3 in XDP: a stateful session's counter is its first sender's (address and port).
// Another sender with the same SSID is passed to user space (other-sender), which numbers it
// apart; the agent's side of the mapped array follows the same owner. Before: XDP numbered
// every sender of the SSID from one counter, so each saw the others' packets as losses.
TEST_F(StampReflector, AStatefulCounterIsItsFirstSendersOnly) {
  AddSession(9, STAMP_F_STATEFUL, {});
  auto from = [&](uint16_t sport, uint32_t seq) {
    FrameSpec f = To(TestPacket(seq, 9));
    f.sport = sport;
    return Run(BuildFrame(f));
  };
  EXPECT_EQ(Reply(from(40000, 0).out).seq, 0u);
  const auto other = from(40001, 0);
  EXPECT_EQ(other.retval, XDP_PASS) << "another sender's packet: user space answers it";
  EXPECT_EQ(Reason(STAMP_PASS_OTHER_SENDER), 1u);
  EXPECT_EQ(Reply(from(40000, 1).out).seq, 1u) << "the owner's sequence did not move for the other";

  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t len = (sizeof(stamp_reflector_session) * STAMP_MAX_SESSIONS + page - 1) / page * page;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(skel_->maps.stamp_sessions), 0);
  ASSERT_NE(m, MAP_FAILED);
  auto* s = &static_cast<stamp_reflector_session*>(m)[slots_[9]];
  EXPECT_EQ(s->owner_state, static_cast<uint32_t>(STAMP_OWNER_SET));
  EXPECT_TRUE(stamp_owned_by(s, kSender.bytes.data(), htons(40000))) << "user space sees the same owner";
  EXPECT_FALSE(stamp_owned_by(s, kSender.bytes.data(), htons(40001)));
  EXPECT_FALSE(stamp_owned_by(s, kLocal.bytes.data(), htons(40000))) << "same port, another address";

  // A session nobody has answered yet: user space may claim it first, and XDP then follows.
  AddSession(10, STAMP_F_STATEFUL, {});
  auto* t = &static_cast<stamp_reflector_session*>(m)[slots_[10]];
  EXPECT_TRUE(stamp_owned_by(t, kSender.bytes.data(), htons(40001)));
  FrameSpec f = To(TestPacket(0, 10));
  EXPECT_EQ(Run(BuildFrame(f)).retval, XDP_PASS) << "port 40000 is not the owner of session 10";
  f.sport = 40001;
  EXPECT_EQ(Run(BuildFrame(f)).retval, XDP_TX);
  munmap(m, len);
}

TEST_F(StampReflector, EverythingElsePassesOrIsDroppedByReason) {
  AddSession(7, 0, {});
  {  // SSID 12 belongs to port 863 on this address: a packet to 862 must not find it
    const uint32_t slot = next_slot_++, key = 12, slot1 = slot + 1;
    stamp_reflector_session other{};
    std::memcpy(other.addr, kLocal.bytes.data(), 16);
    other.port = 863;
    other.ssid = 12;
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.stamp_sessions, &slot, sizeof slot, &other, sizeof other, BPF_ANY), 0);
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.stamp_ssid_slots, &key, sizeof key, &slot1, sizeof slot1, BPF_ANY), 0);
  }
  constexpr auto kUncounted = STAMP_REASON_MAX;
  struct Case {
    const char* what;
    FrameSpec spec;
    int verdict;
    stamp_reason reason;  // kUncounted: unrelated traffic moves no counter
  } cases[] = {
      {"IPv4", {.payload = TestPacket(1, 7), .ipv4 = true}, XDP_PASS, kUncounted},
      {"wrong port", [] { auto s = To(TestPacket(1, 7)); s.dport = 863; return s; }(), XDP_PASS, kUncounted},
      {"SRH still active", [] { auto s = To(TestPacket(1, 7)); s.srh_segments = {kLocal, kP1}; s.segments_left = 1; return s; }(), XDP_PASS, kUncounted},
      {"other address", [] { auto s = To(TestPacket(1, 7)); s.dst = kP1; return s; }(), XDP_PASS, STAMP_PASS_NOT_LISTENER},
      {"unknown SSID", To(TestPacket(1, 8)), XDP_PASS, STAMP_PASS_NO_SESSION},
      {"SSID of another listener's port", [] { auto s = To(TestPacket(1, 12)); return s; }(), XDP_PASS, STAMP_PASS_NO_SESSION},
      {"unknown TLV: user space answers", To(TestPacket(1, 7, {stamp::Tlv{0, 200, {1, 2, 3, 4}}})), XDP_PASS, STAMP_PASS_TLVS},
      {"truncated STAMP", To(std::vector<uint8_t>(20, 0)), XDP_DROP, STAMP_DROP_MALFORMED},
  };
  for (const auto& c : cases) {
    const auto in = BuildFrame(c.spec);
    const uint64_t all = AllReasons();
    const uint64_t before = c.reason == kUncounted ? 0 : Reason(c.reason);
    const auto r = Run(in);
    EXPECT_EQ(r.retval, c.verdict) << c.what;
    EXPECT_EQ(r.out, in) << c.what << ": a packet that is not reflected is not touched";
    if (c.reason == kUncounted) {
      EXPECT_EQ(AllReasons(), all) << c.what;
    } else {
      EXPECT_EQ(Reason(c.reason), before + 1) << c.what;
    }
  }
  EXPECT_EQ(Reason(STAMP_TX_REFLECTED), 0u);
}

// Nothing corrupted is reflected: a zero checksum (forbidden in IPv6) is dropped, a wrong one
// goes to the stack, which drops corruption and hands a partially offloaded one to the
// user-space engine. A correct one, the same packet otherwise, is reflected.
TEST_F(StampReflector, TestPacketsWithABadChecksumAreNotReflected) {
  AddSession(7, 0, {});
  const auto good = BuildFrame(To(TestPacket(1, 7)));
  const size_t check_at = UdpOffset(good) + 6;
  ASSERT_GT(check_at, 6u);
  auto zero = good;
  zero[check_at] = zero[check_at + 1] = 0;
  auto wrong = good;
  wrong[check_at] ^= 0x01;
  auto flipped = good;  // a payload bit flipped on the way, checksum as sent
  flipped[UdpOffset(good) + 8 + 20] ^= 0x40;
  struct Case {
    const char* what;
    const std::vector<uint8_t>& in;
    int verdict;
    stamp_reason reason;
  } cases[] = {
      {"zero checksum", zero, XDP_DROP, STAMP_DROP_ZERO_CSUM},
      {"wrong checksum", wrong, XDP_PASS, STAMP_PASS_CSUM},
      {"payload corrupted", flipped, XDP_PASS, STAMP_PASS_CSUM},
  };
  for (const auto& c : cases) {
    const uint64_t before = Reason(c.reason);
    const auto r = Run(c.in);
    EXPECT_EQ(r.retval, c.verdict) << c.what;
    EXPECT_EQ(r.out, c.in) << c.what << ": not touched";
    EXPECT_EQ(Reason(c.reason), before + 1) << c.what;
  }
  EXPECT_EQ(Reason(STAMP_TX_REFLECTED) + Reason(STAMP_REDIRECT_REFLECTED), 0u);
  const auto r = Run(good);
  EXPECT_TRUE(r.retval == XDP_TX || r.retval == XDP_REDIRECT) << r.retval;
  EXPECT_TRUE(UdpChecksumOk(r.out));
}

TEST_F(StampReflector, NoRouteForTheReplyLeavesItToTheStack) {
  AddSession(13, STAMP_F_STATEFUL, {*ParseIp("fc00:0:9::e")});  // nothing routes to fc00:0:9::
  const auto in = BuildFrame(To(TestPacket(1, 13)));
  const auto r = Run(in);
  EXPECT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(Reason(STAMP_PASS_NO_ROUTE), 1u);
  EXPECT_EQ(Reason(STAMP_TX_REFLECTED) + Reason(STAMP_REDIRECT_REFLECTED), 0u);
}

// bpf_fib_lookup answers only where the interface forwards; a reflector that is no router
// replies to the neighbour the test packet came from, still in XDP.
TEST_F(StampReflector, AHostThatDoesNotForwardRepliesToTheNeighbourItHeardFrom) {
  auto forwarding = [](const char* v) {
    FILE* f = std::fopen("/proc/sys/net/ipv6/conf/all/forwarding", "w");
    ASSERT_NE(f, nullptr);
    std::fputs(v, f);
    std::fclose(f);
  };
  forwarding("0");
  AddSession(7, 0, {});
  FrameSpec spec = To(TestPacket(3, 7));
  spec.src_mac = {2, 0, 0, 0, 0x0a, 0x77};
  spec.dst_mac = kMacA0;
  const auto r = Run(BuildFrame(spec));
  forwarding("1");
  ASSERT_EQ(r.retval, XDP_TX);
  EXPECT_TRUE(std::equal(spec.src_mac.begin(), spec.src_mac.end(), r.out.begin())) << "back to the sender's MAC";
  EXPECT_TRUE(std::equal(kMacA0.begin(), kMacA0.end(), r.out.begin() + 6));
  EXPECT_TRUE(UdpChecksumOk(r.out));
  EXPECT_EQ(Reply(r.out).sender_seq, 3u);
  EXPECT_EQ(Reason(STAMP_PASS_NO_ROUTE), 0u);
}

TEST_F(StampReflector, LyingUdpLengthIsDropped) {
  AddSession(7, 0, {});
  auto in = BuildFrame(To(TestPacket(1, 7)));
  const size_t u = UdpOffset(in);
  in[u + 5] += 16;  // claims 16 bytes more than the frame has
  const auto r = Run(in);
  EXPECT_EQ(r.retval, XDP_DROP);
  EXPECT_EQ(Reason(STAMP_DROP_MALFORMED), 1u);
}

TEST_F(StampReflector, FragmentsPassToTheStack) {
  AddSession(7, 0, {});
  auto in = BuildFrame(To(TestPacket(1, 7)));
  in[20] = 44;  // Fragment header instead of UDP
  const uint64_t all = AllReasons();
  const auto r = Run(in);
  EXPECT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(AllReasons(), all) << "the stack reassembles; not a STAMP verdict";
}

// ---- the collector: replies to a sender session, in the same program ----------------------

constexpr uint16_t kSenderPort = 40001;  // the sender socket's port (here: this edge is the sender)

class StampCollector : public StampReflector {
 protected:
  void SetUp() override {
    StampReflector::SetUp();
    if (IsSkipped() || !skel_) return;
    ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.stamp_records), &StampCollector::OnRecord, this, nullptr);
    ASSERT_NE(ring_, nullptr);
  }
  void TearDown() override {
    if (ring_) ring_buffer__free(ring_);
    StampReflector::TearDown();
  }
  void Collect(uint16_t ssid, uint16_t port = kSenderPort) {
    stamp_collector_session c{};
    std::memcpy(c.addr, kLocal.bytes.data(), 16);
    std::memcpy(c.peer, kSender.bytes.data(), 16);
    c.ssid = ssid;
    c.reflector_port = kPort;
    const uint32_t key = port;
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.stamp_collectors, &key, sizeof key, &c, sizeof c, BPF_ANY), 0);
    skel_->bss->stamp_collect_bits[port >> 6] |= 1ULL << (port & 63);
  }
  static int OnRecord(void* self, void* data, size_t len) {
    EXPECT_EQ(len, sizeof(stamp_collect_record));
    stamp_collect_record r;
    std::memcpy(&r, data, sizeof r);
    static_cast<StampCollector*>(self)->records_.push_back(r);
    return 0;
  }
  std::vector<stamp_collect_record> Drain() {
    records_.clear();
    EXPECT_GE(ring_buffer__consume(ring_), 0);
    return records_;
  }
  uint64_t RingFull(uint16_t port = kSenderPort) {
    const uint32_t key = port;
    stamp_collector_session c{};
    EXPECT_EQ(bpf_map__lookup_elem(skel_->maps.stamp_collectors, &key, sizeof key, &c, sizeof c, 0), 0);
    return c.ring_full;
  }
  ring_buffer* ring_ = nullptr;
  std::vector<stamp_collect_record> records_;
};

std::vector<uint8_t> ReplyPacket(uint16_t ssid, std::vector<stamp::Tlv> tlvs = {}) {
  return stamp::BuildReflector({.seq = 7, .timestamp = 0x3333333344444444ULL, .error_estimate = 0x8001,
                                .ssid = ssid, .receive_timestamp = 0x1111111122222222ULL, .sender_seq = 41,
                                .sender_timestamp = 0x5555555566666666ULL, .sender_error_estimate = 0x8001,
                                .sender_ttl = 60, .tlvs = std::move(tlvs)},
                               Mode::kUnauthenticated);
}

// A reply from the reflector (kSender here) to this edge's sender socket.
FrameSpec Back(std::vector<uint8_t> payload) {
  return FrameSpec{.src = kSender, .dst = kLocal, .hop_limit = 62, .sport = kPort, .dport = kSenderPort,
                   .payload = std::move(payload)};
}

TEST_F(StampCollector, RecordsTheReplyWithT4AndConsumesIt) {
  Collect(21);
  for (bool srh : {false, true}) {
    SCOPED_TRACE(srh ? "SRH at Segments Left 0" : "no SRH");
    FrameSpec spec = Back(ReplyPacket(21));
    if (srh) spec.srh_segments = {kLocal, kP2};
    const uint64_t before = NowTai();
    const auto r = Run(BuildFrame(spec));
    const uint64_t after = NowTai();
    EXPECT_EQ(r.retval, XDP_DROP) << "consumed: the socket never sees it";
    const auto recs = Drain();
    ASSERT_EQ(recs.size(), 1u);
    const auto& x = recs[0];
    EXPECT_EQ(x.ssid, 21);
    EXPECT_EQ(x.local_port, kSenderPort);
    EXPECT_EQ(x.sender_seq, 41u);
    EXPECT_EQ(x.reflector_seq, 7u);
    EXPECT_EQ(x.t1, 0x5555555566666666ULL);
    EXPECT_EQ(x.t2, 0x1111111122222222ULL);
    EXPECT_EQ(x.t3, 0x3333333344444444ULL);
    EXPECT_EQ(x.sender_ttl, 60);
    EXPECT_EQ(x.reflector_error_estimate, 0x8001) << "the reflector's Z bit comes along";
    EXPECT_GE(x.t4, before);
    EXPECT_LE(x.t4, after);
  }
  EXPECT_EQ(Reason(STAMP_COLLECTED), 2u);
}

// A reflector timestamping in PTP for an NTP sender: the record says so (Z set), and the agent
// reads T2 and T3 in PTP. Read in the sender's format, the delays were off by 2.2e12 ms.
TEST_F(StampCollector, AReflectorInAnotherFormatIsReadInItsOwn) {
  Collect(22);
  const uint64_t t1_tai = 1'700'000'000'123'456'789ULL;
  const uint64_t t2_tai = t1_tai + 12'000'000, t3_tai = t2_tai + 30'000;
  auto ptp = [](uint64_t ns) { return (ns / 1'000'000'000ULL) << 32 | (ns % 1'000'000'000ULL); };
  const uint16_t ntp_ee = stamp::ErrorEstimate{.format = stamp::TimestampFormat::kNtp}.Encode();
  const uint16_t ptp_ee = stamp::ErrorEstimate{.format = stamp::TimestampFormat::kPtp}.Encode();
  auto payload = stamp::BuildReflector(
      {.seq = 1, .timestamp = ptp(t3_tai), .error_estimate = ptp_ee, .ssid = 22, .receive_timestamp = ptp(t2_tai),
       .sender_seq = 1, .sender_timestamp = stamp::EncodeTimestamp(t1_tai, stamp::TimestampFormat::kNtp, 0),
       .sender_error_estimate = ntp_ee, .sender_ttl = 64},
      Mode::kUnauthenticated);
  ASSERT_EQ(Run(BuildFrame(Back(payload))).retval, XDP_DROP);
  const auto recs = Drain();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].reflector_error_estimate, ptp_ee);
  const auto t = stamp::DecodeReplyTimes(recs[0].t1, ntp_ee, recs[0].t2, recs[0].t3, recs[0].reflector_error_estimate, 0);
  EXPECT_NEAR(static_cast<double>(static_cast<int64_t>(t.t2 - t.t1)), 12e6, 2);  // NTP's fraction rounds to 1 ns
  EXPECT_EQ(t.t3 - t.t2, 30'000u);
}

// Every valid reply is collected, whatever its words add up to: a lost carry in the checksum
// sum shows up on a fraction of packets only, so many different ones are tried.
TEST_F(StampCollector, EveryValidReplyPassesTheChecksumCheck) {
  Collect(21);
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto next = [&x] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
  constexpr int kReplies = 500;
  for (int i = 0; i < kReplies; ++i) {
    auto payload = stamp::BuildReflector({.seq = static_cast<uint32_t>(next()), .timestamp = next(),
                                          .error_estimate = 0x8001, .ssid = 21, .receive_timestamp = next(),
                                          .sender_seq = static_cast<uint32_t>(next()), .sender_timestamp = next(),
                                          .sender_ttl = static_cast<uint8_t>(next())},
                                         Mode::kUnauthenticated);
    FrameSpec spec = Back(std::move(payload));
    spec.sport = kPort;
    if (i % 2) spec.srh_segments = {kLocal, kP2};
    const auto in = BuildFrame(spec);
    ASSERT_TRUE(UdpChecksumOk(in));
    ASSERT_EQ(Run(in).retval, XDP_DROP) << "reply " << i << " was not collected";
  }
  EXPECT_EQ(Drain().size(), static_cast<size_t>(kReplies));
  EXPECT_EQ(Reason(STAMP_COLLECT_CSUM_PASS), 0u);
}

// Random replies and near-replies (another SSID, source, port or address, cut or extended
// payloads, SRHs, bytes changed after the checksum): the collector records a frame only when it
// is a base reply from the session's reflector ([kSender]:862 to [kLocal]:kSenderPort) with the
// session's SSID and a checksum that adds up, and then records exactly what the reply says.
// Nothing makes it abort. 100,000 frames.
TEST_F(StampCollector, RandomFramesAreRecordedRightOrNotAtAll) {
  Collect(21);
  uint64_t x = 0x2545f4914f6cdd1dULL;
  auto next = [&x] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
  auto below = [&](uint64_t n) { return static_cast<size_t>(next() % n); };
  constexpr int kFrames = 100000;
  int recorded = 0;
  for (int i = 0; i < kFrames; ++i) {
    const uint16_t ssid = below(4) ? 21 : static_cast<uint16_t>(below(3) * 11);  // 21, or 0, 11, 22
    auto payload = stamp::BuildReflector({.seq = static_cast<uint32_t>(next()), .timestamp = next(),
                                          .error_estimate = static_cast<uint16_t>(next()), .ssid = ssid,
                                          .receive_timestamp = next(), .sender_seq = static_cast<uint32_t>(next()),
                                          .sender_timestamp = next(), .sender_ttl = static_cast<uint8_t>(next())},
                                         Mode::kUnauthenticated);
    if (below(4) == 0) payload.resize(below(payload.size() + 8));
    if (below(8) == 0) payload.push_back(static_cast<uint8_t>(next()));
    FrameSpec spec = Back(payload);
    if (below(8) == 0) spec.src = below(2) ? kP1 : kP2;
    if (below(8) == 0) spec.dst = kP1;
    if (below(8) == 0) spec.sport = static_cast<uint16_t>(861 + below(3));
    if (below(16) == 0) spec.dport = static_cast<uint16_t>(kSenderPort + 1);
    if (below(3) == 0) spec.srh_segments = {kLocal, kP2};
    auto frame = BuildFrame(spec);
    if (below(4) == 0) {
      for (size_t n = 1 + below(3); n; --n) frame[below(frame.size())] = static_cast<uint8_t>(next());
    }
    SCOPED_TRACE("frame " + std::to_string(i));
    const auto r = Run(frame);
    ASSERT_NE(r.retval, XDP_ABORTED);
    const auto recs = Drain();
    if (recs.empty()) continue;
    ASSERT_EQ(recs.size(), 1u);
    ASSERT_EQ(r.retval, XDP_DROP) << "a recorded reply is consumed";
    ++recorded;
    // What went in, read from the frame as it was run
    const size_t u = UdpOffset(frame);
    ASSERT_NE(u, 0u);
    ASSERT_TRUE(UdpChecksumOkAsReceived(frame)) << "recorded with a checksum that does not add up";
    ASSERT_EQ(static_cast<size_t>(frame[18] << 8 | frame[19]), frame.size() - 54) << "recorded with a lying IPv6 length";
    ASSERT_EQ(At(frame, 22), kSender) << "recorded from another address";
    ASSERT_EQ((frame[u] << 8 | frame[u + 1]), kPort) << "recorded from another port";
    ASSERT_EQ((frame[u + 2] << 8 | frame[u + 3]), kSenderPort);
    ASSERT_EQ(frame.size(), u + 8 + stamp::kUnauthenticatedLength) << "only a base reply is recorded in XDP";
    auto parsed = stamp::ParseReflector(std::span(frame).subspan(u + 8), Mode::kUnauthenticated);
    ASSERT_TRUE(std::holds_alternative<stamp::ReflectorPacket>(parsed));
    const auto& p = std::get<stamp::ReflectorPacket>(parsed);
    const auto& rec = recs[0];
    ASSERT_EQ(p.ssid, 21);
    ASSERT_EQ(rec.ssid, 21);
    ASSERT_EQ(rec.local_port, kSenderPort);
    ASSERT_EQ(rec.reflector_seq, p.seq);
    ASSERT_EQ(rec.sender_seq, p.sender_seq);
    ASSERT_EQ(rec.t1, p.sender_timestamp);
    ASSERT_EQ(rec.t2, p.receive_timestamp);
    ASSERT_EQ(rec.t3, p.timestamp);
    ASSERT_EQ(rec.sender_ttl, p.sender_ttl);
    ASSERT_EQ(rec.reflector_error_estimate, p.error_estimate);
  }
  std::printf("{\"random_frames\": %d, \"recorded\": %d}\n", kFrames, recorded);
  EXPECT_GT(recorded, kFrames / 10) << "too few recorded for the check to mean much";
}

TEST_F(StampCollector, AnythingElseToThePortPassesOrIsDroppedByReason) {
  Collect(21);
  struct Case {
    const char* what;
    FrameSpec spec;
    int verdict;
    stamp_reason reason;
  } cases[] = {
      {"from another port", [] { auto s = Back(ReplyPacket(21)); s.sport = 863; return s; }(), XDP_PASS, STAMP_COLLECT_PASS},
      {"to another address", [] { auto s = Back(ReplyPacket(21)); s.dst = kP1; return s; }(), XDP_PASS, STAMP_COLLECT_PASS},
      // RFC 8972 §3: not from the session's reflector, whatever it says (before: recorded)
      {"from another address", [] { auto s = Back(ReplyPacket(21)); s.src = kP2; return s; }(), XDP_PASS, STAMP_COLLECT_PASS},
      {"with TLVs: the socket parses them", Back(ReplyPacket(21, {stamp::ExtraPaddingTlv(8)})), XDP_PASS, STAMP_COLLECT_PASS},
      {"another SSID", Back(ReplyPacket(22)), XDP_DROP, STAMP_COLLECT_MALFORMED},
      {"SSID 0 (an RFC 8762-only reflector): the socket decides", Back(ReplyPacket(0)), XDP_PASS, STAMP_COLLECT_PASS},
      {"truncated", Back(std::vector<uint8_t>(30, 0)), XDP_DROP, STAMP_COLLECT_MALFORMED},
  };
  for (const auto& c : cases) {
    const auto in = BuildFrame(c.spec);
    const uint64_t before = Reason(c.reason);
    const auto r = Run(in);
    EXPECT_EQ(r.retval, c.verdict) << c.what;
    EXPECT_EQ(r.out, in) << c.what;
    EXPECT_EQ(Reason(c.reason), before + 1) << c.what;
  }
  // A checksum that does not add up may be corruption or an offloaded partial one: the stack
  // (which knows) decides, and the session's socket reads what it keeps. Untouched either way.
  auto corrupt = BuildFrame(Back(ReplyPacket(21)));
  corrupt[UdpOffset(corrupt) + 8 + 20] ^= 0x40;  // a bit of T2 flipped on the way
  auto r = Run(corrupt);
  EXPECT_EQ(r.retval, XDP_PASS);
  EXPECT_EQ(r.out, corrupt);
  auto zero = BuildFrame(Back(ReplyPacket(21)));
  zero[UdpOffset(zero) + 6] = zero[UdpOffset(zero) + 7] = 0;
  EXPECT_EQ(Run(zero).retval, XDP_PASS) << "IPv6 UDP without a checksum";
  EXPECT_EQ(Reason(STAMP_COLLECT_CSUM_PASS), 2u);
  EXPECT_TRUE(Drain().empty()) << "nothing recorded";
  EXPECT_EQ(Reason(STAMP_COLLECTED), 0u);
  skel_->bss->stamp_collect_bits[kSenderPort >> 6] = 0;
  const auto in = BuildFrame(Back(ReplyPacket(21)));
  const uint64_t all = AllReasons();
  EXPECT_EQ(Run(in).retval, XDP_PASS) << "a port nobody collects";
  EXPECT_EQ(AllReasons(), all) << "unrelated traffic moves no counter";
}

TEST_F(StampCollector, AFullRingDropsAndCountsPerSession) {
  Collect(21);
  const auto in = BuildFrame(Back(ReplyPacket(21)));
  const uint32_t n = STAMP_RING_BYTES / (sizeof(stamp_collect_record) + 8) + 100;
  const auto r = RunXdp(bpf_program__fd(skel_->progs.stamp_xdp), in, n, 0);
  ASSERT_TRUE(r);
  const size_t kept = Drain().size();
  EXPECT_GT(kept, 0u);
  EXPECT_EQ(RingFull(), n - kept) << "every record that found no room is counted";
  EXPECT_EQ(Reason(STAMP_COLLECT_RING_FULL), n - kept);
  EXPECT_EQ(Reason(STAMP_COLLECTED), kept);
  EXPECT_EQ(Run(in).retval, XDP_DROP);
  EXPECT_EQ(Drain().size(), 1u) << "room again once drained";
}

}  // namespace
}  // namespace segwan::testing
