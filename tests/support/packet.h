#pragma once

// Builds Ethernet/IPv6[/SRH]/UDP test frames with a correct UDP checksum, and runs XDP
// programs on them through BPF_PROG_TEST_RUN. For BPF tests and benchmarks.
#include <cstdint>
#include <optional>
#include <string>
#include <span>
#include <vector>

#include "segwan/net.h"

namespace segwan::testing {

struct FrameSpec {
  std::array<uint8_t, 6> src_mac{0x02, 0, 0, 0, 0, 0x0a};
  std::array<uint8_t, 6> dst_mac{0x02, 0, 0, 0, 0, 0x0b};
  IpAddress src = *ParseIp("fc00:0:a::1");
  IpAddress dst = *ParseIp("fc00:0:b::1");
  uint8_t hop_limit = 62;
  uint8_t traffic_class = 0;
  // SRH segment list as it sits in the header (segments[0] = final destination); empty = none
  std::vector<IpAddress> srh_segments;
  uint8_t segments_left = 0;
  uint16_t sport = 40000, dport = 862;
  std::vector<uint8_t> payload;
  bool ipv4 = false;  // an IPv4/UDP frame instead (addresses ignored: 10.0.0.1 -> 10.0.0.2)
};

std::vector<uint8_t> BuildFrame(const FrameSpec& s);

// Offsets into a built frame.
size_t UdpOffset(std::span<const uint8_t> frame);  // 0 when not IPv6/UDP
// Recomputes the UDP checksum of an IPv6 frame (final destination from the SRH if any) and
// says whether the one in the frame is right.
bool UdpChecksumOk(std::span<const uint8_t> frame);
// The same as the final node checks it: with the IPv6 Destination Address the frame carries
// (at Segments Left 0 that is the final destination, whatever the SRH's segments[0] says).
bool UdpChecksumOkAsReceived(std::span<const uint8_t> frame);

struct RunResult {
  int retval = -1;
  std::vector<uint8_t> out;
  uint32_t duration_ns = 0;  // average per run, from the kernel
};
// BPF_PROG_TEST_RUN; `repeat` > 1 reuses the buffer, so the program sees its own output.
// `ingress_ifindex` (0 = loopback) is the interface the frame seems to arrive on.
std::optional<RunResult> RunXdp(int prog_fd, std::span<const uint8_t> frame, uint32_t repeat = 1,
                                int ingress_ifindex = 0);

// Moves this process into a network namespace of its own laid out like a reflector edge:
// fc00:0:b::1 on lo; link a0 (MAC 02:00:00:00:0a:00) towards fc00:0:a::/48 and fc00:0:1::/48
// through neighbour 02:00:00:00:0a:01; link b0 (02:00:00:00:0b:00) towards fc00:0:2::/48
// through 02:00:00:00:0b:01; forwarding on. Returns a0's ifindex, or the reason it failed.
struct ReflectorNetns {
  int a0 = 0, b0 = 0;
  std::string error;
};
ReflectorNetns EnterReflectorNetns();

}  // namespace segwan::testing
