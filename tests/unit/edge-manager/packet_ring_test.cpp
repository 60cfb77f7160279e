// The AF_PACKET ring's frame work, without a ring: the reply frame it builds and the checks it
// makes in place of the kernel's IPv6 input, against the test support's own frame builder and
// checksum (written apart from packet_ring.cpp).
#include "edge-manager/stamp/packet_ring.h"

#include <gtest/gtest.h>

#include "edge-manager/stamp/wire.h"
#include "packet.h"

namespace segwan::stamp {
namespace {

using segwan::testing::BuildFrame;
using segwan::testing::FrameSpec;

constexpr size_t kUdp = 14 + 40;

std::vector<uint8_t> Request(FrameSpec s = {}) {
  if (s.payload.empty()) s.payload = BuildSender({.seq = 7, .ssid = 3}, Mode::kUnauthenticated);
  return BuildFrame(s);
}

TEST(PacketRing, TheReplyFrameGoesBackTheWayTheRequestCame) {
  FrameSpec spec;
  const auto req = Request(spec);
  ASSERT_TRUE(UdpChecksumOk(req, kUdp)) << "agrees with the builder's checksum";
  const std::vector<uint8_t> payload(44, 0x5a);
  const auto reply = ReplyFrame(req, kUdp, payload, 46 << 2);
  ASSERT_EQ(reply.size(), req.size());
  EXPECT_TRUE(std::equal(spec.src_mac.begin(), spec.src_mac.end(), reply.begin())) << "to the neighbour it came from";
  EXPECT_TRUE(std::equal(spec.dst_mac.begin(), spec.dst_mac.end(), reply.begin() + 6));
  EXPECT_TRUE(std::equal(spec.dst.bytes.begin(), spec.dst.bytes.end(), reply.begin() + 14 + 8)) << "from the address it was sent to";
  EXPECT_TRUE(std::equal(spec.src.bytes.begin(), spec.src.bytes.end(), reply.begin() + 14 + 24));
  EXPECT_EQ(reply[kUdp] << 8 | reply[kUdp + 1], 862);
  EXPECT_EQ(reply[kUdp + 2] << 8 | reply[kUdp + 3], 40000);
  EXPECT_EQ((reply[14] & 0x0f) << 2 | reply[15] >> 6, 46) << "DSCP 46 in the traffic class";
  EXPECT_EQ(reply[14 + 7], 64) << "hop limit";
  EXPECT_TRUE(segwan::testing::UdpChecksumOk(reply)) << "the test support's checksum agrees";
  EXPECT_TRUE(UdpChecksumOk(reply, kUdp));
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), reply.begin() + kUdp + 8));

  // Built again in a reused buffer full of other bytes: the same frame.
  std::vector<uint8_t> reused(200, 0xff);
  WriteReplyFrame(reused, req, kUdp, payload, 46 << 2);
  EXPECT_EQ(reused, reply);
}

TEST(PacketRing, WhatIpv6InputOrUdpWouldRefuseIsRefused) {
  const auto ok = Request();
  const size_t udp_len = ok.size() - kUdp;
  EXPECT_TRUE(Ipv6InputWouldTake(ok, 14, udp_len));
  auto changed = [&](auto edit) {
    auto f = ok;
    edit(f);
    return f;
  };
  EXPECT_FALSE(Ipv6InputWouldTake(changed([](auto& f) { f[14] = 0x40; }), 14, udp_len)) << "version 4";
  EXPECT_FALSE(Ipv6InputWouldTake(changed([](auto& f) { f[14 + 5] += 1; }), 14, udp_len)) << "payload length";
  EXPECT_FALSE(Ipv6InputWouldTake(changed([](auto& f) { f[14 + 8] = 0xff; }), 14, udp_len)) << "multicast source";
  EXPECT_FALSE(Ipv6InputWouldTake(changed([](auto& f) { std::fill(f.begin() + 22, f.begin() + 38, 0); }), 14, udp_len))
      << "unspecified source";
  EXPECT_FALSE(Ipv6InputWouldTake(changed([](auto& f) {
                 std::fill(f.begin() + 22, f.begin() + 38, 0);
                 f[37] = 1;
               }), 14, udp_len)) << "loopback source from outside";
  EXPECT_FALSE(Ipv6InputWouldTake(changed([](auto& f) { f[kUdp] = f[kUdp + 1] = 0; }), 14, udp_len)) << "source port 0";
  EXPECT_FALSE(UdpChecksumOk(changed([](auto& f) { f[kUdp + 8] ^= 1; }), kUdp)) << "a flipped bit";
  EXPECT_FALSE(UdpChecksumOk(changed([](auto& f) { f[kUdp + 6] = f[kUdp + 7] = 0; }), kUdp)) << "zero checksum";
  EXPECT_FALSE(UdpChecksumOk(std::span(ok).first(kUdp + 4), kUdp)) << "cut short";
}

}  // namespace
}  // namespace segwan::stamp
