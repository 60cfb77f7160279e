// The benchmark baselines, run through BPF_PROG_TEST_RUN on a table of frames (root; skips
// with the reason otherwise).
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <ctime>

#include "packet.h"
#include "xdp_baselines.skel.h"

namespace segwan::testing {
namespace {

class XdpBaselines : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
    skel_ = xdp_baselines__open_and_load();
    if (!skel_) GTEST_SKIP() << "this kernel refused the BPF programs (no BPF or no BTF?)";
  }
  void TearDown() override {
    if (skel_) xdp_baselines__destroy(skel_);
  }
  xdp_baselines* skel_ = nullptr;
};

std::vector<uint8_t> StampPayload() {
  std::vector<uint8_t> p(44, 0);
  p[3] = 7;  // sequence number 7
  return p;
}

TEST_F(XdpBaselines, PassLeavesEveryFrameAlone) {
  const auto frame = BuildFrame({.payload = StampPayload()});
  auto r = RunXdp(bpf_program__fd(skel_->progs.xdp_pass), frame);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->retval, XDP_PASS);
  EXPECT_EQ(r->out, frame);
}

TEST_F(XdpBaselines, MinimalReflectorSwapsStampsAndKeepsTheChecksumRight) {
  const auto frame = BuildFrame({.payload = StampPayload()});
  ASSERT_TRUE(UdpChecksumOk(frame));
  timespec before;
  clock_gettime(CLOCK_TAI, &before);
  auto r = RunXdp(bpf_program__fd(skel_->progs.xdp_min_reflector), frame);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->retval, XDP_TX);
  const auto& out = r->out;
  ASSERT_EQ(out.size(), frame.size());
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 6, frame.begin() + 6)) << "destination MAC";
  EXPECT_TRUE(std::equal(out.begin() + 6, out.begin() + 12, frame.begin())) << "source MAC";
  EXPECT_TRUE(std::equal(out.begin() + 22, out.begin() + 38, frame.begin() + 38)) << "source address";
  EXPECT_TRUE(std::equal(out.begin() + 38, out.begin() + 54, frame.begin() + 22)) << "destination address";
  const size_t u = UdpOffset(out);
  EXPECT_EQ(out[u] << 8 | out[u + 1], 862) << "source port";
  EXPECT_EQ(out[u + 2] << 8 | out[u + 3], 40000) << "destination port";
  uint64_t ts = 0;
  for (int i = 0; i < 8; ++i) ts = ts << 8 | out[u + 8 + 16 + static_cast<size_t>(i)];
  const uint64_t now_ns = static_cast<uint64_t>(before.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(before.tv_nsec);
  EXPECT_GE(ts, now_ns - 1'000'000'000ULL) << "the timestamp is the kernel's TAI time";
  EXPECT_LE(ts, now_ns + 1'000'000'000ULL);
  EXPECT_TRUE(UdpChecksumOk(out)) << "incremental checksum";
}

TEST_F(XdpBaselines, MinimalReflectorPassesWhatIsNotForIt) {
  struct Case {
    const char* what;
    FrameSpec spec;
  } cases[] = {
      {"other UDP port", {.dport = 53, .payload = StampPayload()}},
      {"IPv4", {.payload = StampPayload(), .ipv4 = true}},
      {"too short for the timestamp", {.payload = std::vector<uint8_t>(10, 0)}},
  };
  for (const auto& c : cases) {
    const auto frame = BuildFrame(c.spec);
    auto r = RunXdp(bpf_program__fd(skel_->progs.xdp_min_reflector), frame);
    ASSERT_TRUE(r) << c.what;
    EXPECT_EQ(r->retval, XDP_PASS) << c.what;
    EXPECT_EQ(r->out, frame) << c.what;
  }
}

}  // namespace
}  // namespace segwan::testing
