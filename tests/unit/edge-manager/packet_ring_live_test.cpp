// The STAMP receive ring on a real veth pair (root: a network namespace of its own): what it
// delivers, and its estimate of how densely packets come, which decides whether the worker
// waits on the ring for the next packet or goes back to poll.
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "edge-manager/stamp/packet_ring.h"
#include "edge-manager/stamp/wire.h"
#include "packet.h"

namespace segwan::stamp {
namespace {

using segwan::testing::BuildFrame;
using segwan::testing::EnterReflectorNetns;
using segwan::testing::FrameSpec;
using segwan::testing::ReflectorNetns;

class PacketRingLive : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() == 0) netns_ = EnterReflectorNetns();
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "a packet ring in a network namespace needs root";
    if (!netns_.error.empty()) GTEST_SKIP() << netns_.error;
    // Frames are sent into a1 and arrive on a0, the reflector's side of the link.
    tx_ = socket(AF_PACKET, SOCK_RAW, 0);
    ASSERT_GE(tx_, 0);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(if_nametoindex("a1"));
    ASSERT_GT(to.sll_ifindex, 0);
    ASSERT_EQ(bind(tx_, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    FrameSpec spec;
    spec.src_mac = {2, 0, 0, 0, 0x0a, 1};
    spec.dst_mac = {2, 0, 0, 0, 0x0a, 0};
    spec.payload.assign(44, 0);
    frame_ = BuildFrame(spec);
  }
  void TearDown() override {
    if (tx_ >= 0) close(tx_);
  }
  void Send(int n, std::chrono::microseconds apart) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(send(tx_, frame_.data(), frame_.size(), 0), static_cast<ssize_t>(frame_.size()));
      if (apart.count()) std::this_thread::sleep_for(apart);
    }
  }
  // Drains the ring until `n` packets came (2 s at most); their receive timestamps.
  static std::vector<uint64_t> Take(PacketRing& ring, size_t n) {
    std::vector<uint64_t> rx;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (rx.size() < n && std::chrono::steady_clock::now() < until) {
      if (!ring.Drain([&](const RingPacket& p) { rx.push_back(p.rx_realtime_ns); }))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return rx;
  }

  static inline ReflectorNetns netns_;
  int tx_ = -1;
  std::vector<uint8_t> frame_;
};

TEST_F(PacketRingLive, DeliversEachTestPacketOnceWithItsArrivalTime) {
  auto ring = PacketRing::Open(kDefaultPort);
  ASSERT_TRUE(ring) << ring.error().message;
  Send(5, std::chrono::microseconds(0));
  const auto rx = Take(*ring, 5);
  ASSERT_EQ(rx.size(), 5u);
  for (size_t i = 1; i < rx.size(); ++i) EXPECT_LE(rx[i - 1], rx[i]);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ring->Drain([](const RingPacket&) {}), 0u) << "a packet delivered twice";
}

TEST_F(PacketRingLive, TheArrivalGapFollowsHowDenselyPacketsCome) {
  auto ring = PacketRing::Open(kDefaultPort);
  ASSERT_TRUE(ring) << ring.error().message;
  EXPECT_EQ(ring->MeanArrivalGapNs(), 1'000'000'000) << "before two packets, traffic counts as sparse";

  // A burst: one send after the other, microseconds apart.
  Send(32, std::chrono::microseconds(0));
  ASSERT_EQ(Take(*ring, 32).size(), 32u);
  const int64_t dense = ring->MeanArrivalGapNs();
  EXPECT_LT(dense, 500'000) << "a burst of back-to-back packets";

  // Then 3 ms apart: within a dozen packets the estimate follows.
  Send(12, std::chrono::microseconds(3000));
  const auto rx = Take(*ring, 12);
  ASSERT_EQ(rx.size(), 12u);
  const int64_t sparse = ring->MeanArrivalGapNs();
  EXPECT_GT(sparse, 1'000'000) << "packets 3 ms apart (measured gaps: " << (rx.back() - rx.front()) / 11 << " ns on average)";
  EXPECT_LT(sparse, 1'000'000'000);
}

}  // namespace
}  // namespace segwan::stamp
