// The agent's alternate-marking engine on real kernel traffic, in a network namespace of its
// own: a seg6 encap route sends UDP packets out of veth v0 towards v1; the engine colours and
// counts them at v0's TC egress and counts them again at v1's TC ingress. Then the colour
// switch, stopping, and (in a private mount namespace with its own bpffs) counters that
// survive the engine's restart.
#include "edge-manager/loss/altmark.h"

#include "edge-manager/agent/kernel_check.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace segwan::loss {
namespace edge = segwan::edge;
namespace {

using namespace std::chrono_literals;

const std::vector<IpAddress> kFlow = {*ParseIp("fc00:0:1::e"), *ParseIp("fc00:0:b:1::d6")};

bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// Sends n UDP datagrams to `dst` (through the encap route).
void Send(const char* dst, int n) {
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(9);
  inet_pton(AF_INET6, dst, &to.sin6_addr);
  char payload[100] = {};
  for (int i = 0; i < n; ++i) sendto(fd, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  close(fd);
}

class AltmarkEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    if (unshare(CLONE_NEWNET) != 0) {
      setup_error_ = "unshare(CLONE_NEWNET) failed";
      return;
    }
    if (const auto kernel = edge::ProbeKernel(); !kernel.Has(edge::KernelFeature::kSeg6Encap6)) {
      setup_error_ = kernel.Missing(edge::KernelFeature::kSeg6Encap6);
      return;
    }
    const char* steps[] = {
        "ip link set lo up",
        "ip link add v0 type veth peer name v1",
        "ip link set v0 up",
        "ip link set v1 up",
        "ip -6 addr add fd00:1::1/64 dev v0 nodad",
        "ip -6 addr add fd00:1::2/64 dev v1 nodad",
        "ip -6 neigh add fd00:1::99 lladdr 02:00:00:00:99:01 dev v0",
        "ip link set v1 address 02:00:00:00:99:01",
        "ip -6 route add fc00:0:1::/48 via fd00:1::99 dev v0",
        "ip sr tunsrc set fd00:1::1",
        "ip -6 route add fc00:99::/64 encap seg6 mode encap segs fc00:0:1::e,fc00:0:b:1::d6 dev v0",
    };
    for (const char* s : steps) {
      if (!Sh(s)) {
        setup_error_ = std::string("this kernel or iproute2 refused: ") + s;
        return;
      }
    }
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, BPF)";
    if (!setup_error_.empty()) GTEST_SKIP() << setup_error_;
  }
  std::unique_ptr<AltmarkEngine> LoadAttached(const std::string& pin_dir = "") {
    auto e = AltmarkEngine::Load(pin_dir);
    EXPECT_TRUE(e) << e.error().ToString();
    if (!e) return nullptr;
    EXPECT_TRUE((*e)->Attach("v0"));
    EXPECT_TRUE((*e)->Attach("v1"));
    return std::move(*e);
  }
  static inline std::string setup_error_;
};

TEST_F(AltmarkEngineTest, EveryPacketSentIsCountedAtBothEnds) {
  auto e = LoadAttached();
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->Start(kFlow, Direction::kIngress, 1h));
  ASSERT_TRUE(e->Start(kFlow, Direction::kEgress, 1h));
  Send("fc00:99::1", 100);
  std::this_thread::sleep_for(50ms);
  auto tx = e->Read(kFlow, Direction::kIngress);
  auto rx = e->Read(kFlow, Direction::kEgress);
  ASSERT_TRUE(tx && rx);
  EXPECT_EQ(tx->packets[0], 100u);
  EXPECT_EQ(tx->packets[1], 0u);
  EXPECT_EQ(rx->packets[0], 100u);
  EXPECT_EQ(rx->bytes[0], tx->bytes[0]);
  // 100 bytes of payload + UDP 8 + inner IPv6 40 + SRH 8 + 2 SIDs + outer IPv6 40 + Ethernet 14
  EXPECT_EQ(tx->bytes[0], 100u * (100 + 8 + 40 + 8 + 32 + 40 + 14));

  // Another flow's traffic (a different SID list to the same first SID) is not counted.
  ASSERT_TRUE(Sh("ip -6 route add fc00:98::/64 encap seg6 mode encap segs fc00:0:1::e,fc00:0:c:1::d6 dev v0"));
  Send("fc00:98::1", 20);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(e->Read(kFlow, Direction::kIngress)->packets[0], 100u);
  EXPECT_EQ(e->Read(kFlow, Direction::kEgress)->packets[0], 100u);
  Sh("ip -6 route del fc00:98::/64");

  // Stopped: nothing more is coloured or counted, and Read says so.
  ASSERT_TRUE(e->Stop(kFlow, Direction::kIngress));
  ASSERT_TRUE(e->Stop(kFlow, Direction::kEgress));
  EXPECT_FALSE(e->Read(kFlow, Direction::kIngress));
  EXPECT_FALSE(e->Stop(kFlow, Direction::kIngress));
  EXPECT_EQ(e->flows(), 0u);
}

TEST_F(AltmarkEngineTest, TheIngressSwitchesColourEveryPeriodAndNothingIsLost) {
  auto e = LoadAttached();
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->Start(kFlow, Direction::kIngress, 100ms));
  ASSERT_TRUE(e->Start(kFlow, Direction::kEgress, 100ms));
  for (int i = 0; i < 10; ++i) {
    Send("fc00:99::1", 10);
    std::this_thread::sleep_for(45ms);
  }
  std::this_thread::sleep_for(50ms);
  auto tx = *e->Read(kFlow, Direction::kIngress);
  auto rx = *e->Read(kFlow, Direction::kEgress);
  EXPECT_GE(tx.period_index, 3u);
  EXPECT_GT(tx.packets[0], 0u);
  EXPECT_GT(tx.packets[1], 0u);
  // what the egress counted per colour is exactly what the ingress coloured
  EXPECT_EQ(rx.packets[0], tx.packets[0]);
  EXPECT_EQ(rx.packets[1], tx.packets[1]);
  EXPECT_EQ(tx.packets[0] + tx.packets[1], 100u);
}

TEST_F(AltmarkEngineTest, BadFlowsAreRefusedByField) {
  auto e = LoadAttached();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->Start({}, Direction::kIngress).error().field, "flow.segments");
  std::vector<IpAddress> many(17, *ParseIp("fc00::1"));
  EXPECT_EQ(e->Start(many, Direction::kIngress).error().field, "flow.segments");
  EXPECT_EQ(e->Start({*ParseIp("fc00::1"), *ParseIp("10.0.0.1")}, Direction::kIngress).error().field,
            "flow.segments[1]");
  EXPECT_EQ(e->Start(kFlow, Direction::kIngress, 10ms).error().field, "period_ms");
  EXPECT_EQ(e->flows(), 0u);
  EXPECT_FALSE(e->Attach("nope0"));
}

TEST_F(AltmarkEngineTest, PinnedCountersSurviveARestart) {
  // a bpffs of our own, in a private mount namespace
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    GTEST_SKIP() << "cannot make a private mount namespace";
  }
  const auto dir = std::filesystem::temp_directory_path() / ("segwan-bpffs-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  if (mount("bpf", dir.c_str(), "bpf", 0, nullptr) != 0) GTEST_SKIP() << "cannot mount a bpffs";
  const std::string pins = (dir / "segwan" / "edge-x").string();
  {
    auto e = LoadAttached(pins);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->Start(kFlow, Direction::kIngress, 1h));
    Send("fc00:99::1", 7);
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(e->Read(kFlow, Direction::kIngress)->packets[0], 7u);
  }  // the agent goes; the pinned maps stay
  {
    auto e = LoadAttached(pins);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->flows(), 1u);
    auto c = e->Read(kFlow, Direction::kIngress);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->packets[0], 7u);
    Send("fc00:99::1", 3);
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(e->Read(kFlow, Direction::kIngress)->packets[0], 10u);
  }
  // a folder that is not a bpffs is refused, so counting is never pinned somewhere it is lost
  EXPECT_FALSE(AltmarkEngine::Load(std::filesystem::temp_directory_path().string()));
  umount2(dir.c_str(), MNT_DETACH);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace segwan::loss
