// The STAMP sender's T1 stamper (TC egress) through BPF_PROG_TEST_RUN: test packets of its
// sessions leave with T1 = now in the session's format and a valid UDP checksum (with and
// without an SRH); everything else leaves untouched.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "edge-manager/stamp/wire.h"
#include "packet.h"
#include "segwan_stamp.h"
#include "stamp_sender.skel.h"

namespace segwan::testing {
namespace {

using stamp::Mode;
using stamp::TimestampFormat;

static_assert(sizeof(stamp_sender_session) == 8);
constexpr uint64_t kOld = 0x1122334455667788ULL;

uint64_t NowTai() {
  timespec ts;
  clock_gettime(CLOCK_TAI, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

FrameSpec TestFrame(uint16_t ssid, uint16_t dport = 862, std::vector<IpAddress> srh = {}) {
  FrameSpec f;
  f.dst = srh.empty() ? *ParseIp("fc00:0:b::1") : srh.back();
  f.srh_segments = srh;
  f.segments_left = srh.empty() ? 0 : static_cast<uint8_t>(srh.size() - 1);
  f.dport = dport;
  f.payload = stamp::BuildSender({.seq = 3, .timestamp = kOld, .error_estimate = 0x4001, .ssid = ssid},
                                 Mode::kUnauthenticated);
  return f;
}

uint64_t T1Of(const std::vector<uint8_t>& frame) {
  auto p = stamp::ParseSender(std::span(frame).subspan(UdpOffset(frame) + 8), Mode::kUnauthenticated, nullptr);
  EXPECT_TRUE(std::holds_alternative<stamp::ParsedSender>(p));
  return std::holds_alternative<stamp::ParsedSender>(p) ? std::get<stamp::ParsedSender>(p).packet.timestamp : 0;
}

class StampSender : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
    skel_ = stamp_sender__open_and_load();
    ASSERT_TRUE(skel_) << "the kernel refused the T1 stamper (see the verifier log above)";
    skel_->bss->tai_utc_offset_s = 37;
  }
  void TearDown() override {
    if (skel_) stamp_sender__destroy(skel_);
  }
  void Session(uint32_t ssid, uint32_t flags, uint16_t port = 862, uint16_t active = 1) {
    stamp_sender_session s{flags, port, active};
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.stamp_senders, &ssid, sizeof ssid, &s, sizeof s, BPF_ANY), 0);
  }
  std::vector<uint8_t> Run(const std::vector<uint8_t>& frame) {
    auto r = RunXdp(bpf_program__fd(skel_->progs.stamp_sender_t1), frame);
    EXPECT_TRUE(r);
    EXPECT_EQ(r->retval, TC_ACT_UNSPEC);  // the next filter runs too
    return r->out;
  }
  uint64_t Stamped() {
    std::vector<uint64_t> v(static_cast<size_t>(libbpf_num_possible_cpus()));
    uint32_t zero = 0;
    bpf_map__lookup_elem(skel_->maps.stamp_sender_stamped, &zero, sizeof zero, v.data(), v.size() * 8, 0);
    uint64_t n = 0;
    for (auto x : v) n += x;
    return n;
  }
  stamp_sender* skel_ = nullptr;
};

TEST_F(StampSender, WritesT1NowAndKeepsTheChecksumValid) {
  Session(5, 0);
  Session(6, STAMP_F_PTP);
  const std::vector<IpAddress> srh{*ParseIp("fc00:0:b::1"), *ParseIp("fc00:0:1::e")};
  for (const auto& spec : {TestFrame(5), TestFrame(5, 862, srh)}) {
    const auto in = BuildFrame(spec);
    const uint64_t before = NowTai();
    const auto out = Run(in);
    const uint64_t t1 = stamp::DecodeTimestamp(T1Of(out), TimestampFormat::kNtp, 37);
    EXPECT_NE(T1Of(out), kOld);
    EXPECT_GE(t1 + 2, before);  // NTP's 2^-32 s fraction: encoding and decoding each lose under 1 ns
    EXPECT_LE(t1, NowTai());
    EXPECT_TRUE(UdpChecksumOk(out)) << "checksum after stamping";
    // only the 8 timestamp bytes and the 2 checksum bytes changed
    size_t changed = 0;
    for (size_t i = 0; i < in.size(); ++i) changed += in[i] != out[i];
    EXPECT_LE(changed, 10u);
  }
  const uint64_t before = NowTai();
  const auto ptp = Run(BuildFrame(TestFrame(6)));
  const uint64_t t1 = stamp::DecodeTimestamp(T1Of(ptp), TimestampFormat::kPtp, 37);
  EXPECT_GE(t1, before);
  EXPECT_LE(t1, NowTai());
  EXPECT_TRUE(UdpChecksumOk(ptp));
  EXPECT_EQ(Stamped(), 3u);
}

TEST_F(StampSender, EverythingElseLeavesUntouched) {
  Session(5, 0);
  Session(7, 0, 862, /*active=*/0);
  FrameSpec v4;
  v4.ipv4 = true;
  auto short_payload = TestFrame(5);
  short_payload.payload.resize(20);
  const std::vector<std::vector<uint8_t>> frames = {
      BuildFrame(TestFrame(9)),          // no such session
      BuildFrame(TestFrame(5, 863)),     // another destination port
      BuildFrame(TestFrame(7)),          // an inactive session
      BuildFrame(short_payload),         // too short to be a test packet
      BuildFrame(v4),
  };
  for (const auto& f : frames) EXPECT_EQ(Run(f), f);
  EXPECT_EQ(Stamped(), 0u);
}

}  // namespace
}  // namespace segwan::testing
