#pragma once

// The user-space reflector's fast path: base test packets (IPv6 + UDP, no extension header) to
// a STAMP port are taken from an AF_PACKET receive ring (TPACKET_V2, memory shared with the
// kernel: no system call per packet while packets keep coming), and their replies are built
// here, Ethernet to UDP, and sent in batches (sendmmsg; through the qdisc layer, so that a
// capture on the reflector still shows them). The kernel's UDP
// receive and send paths, most of the socket engine's cost, are skipped. The UDP socket of the
// same port gets a filter that leaves those packets to the ring and keeps the rest (an SRH, a
// return path to follow): both paths answer, never twice.
//
// T2 is the ring's receive timestamp (the kernel's, taken as the packet arrived); T3 is written
// into each reply just before its batch is sent.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include <linux/if_packet.h>
#include <sys/socket.h>

#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::stamp {

// A received base test packet, as the ring delivered it.
struct RingPacket {
  std::span<const uint8_t> frame;  // from the Ethernet header
  size_t udp_offset = 0;           // of the UDP header in `frame`
  uint64_t rx_realtime_ns = 0;     // the kernel's receive timestamp (CLOCK_REALTIME)
  int ifindex = 0;
  // The UDP checksum need not be checked: the device verified it, or the packet was sent
  // by this host with the checksum left to offload (not final in the frame).
  bool checksum_trusted = false;
};

// Whether the kernel's IPv6 input would take the packet whose IPv6 header is at `ip` and whose
// UDP datagram is `udp_len` long (the ring sees packets before it): version 6, a payload
// length that matches, a source that is not multicast, unspecified, or loopback from outside,
// a UDP source port that is not 0.
bool Ipv6InputWouldTake(std::span<const uint8_t> frame, size_t ip, size_t udp_len);

// Whether a base test packet's UDP checksum adds up (RFC 8200 §8.1; zero is forbidden).
bool UdpChecksumOk(std::span<const uint8_t> frame, size_t udp_offset);

class PacketRing {
 public:
  // A ring on every interface for IPv6/UDP to `port`. Fails without CAP_NET_RAW.
  static Result<PacketRing> Open(uint16_t port);
  PacketRing(PacketRing&& o) noexcept;
  PacketRing& operator=(PacketRing&&) = delete;
  PacketRing(const PacketRing&) = delete;
  ~PacketRing();

  int fd() const { return fd_; }
  uint16_t port() const { return port_; }
  // Hands each waiting packet to `on` (at most `max`), returns them to the kernel.
  size_t Drain(const std::function<void(const RingPacket&)>& on, size_t max = 256);
  // The reply to `request` (ReplyFrame), for the interface it came in on, sent with the next
  // Flush; built in a buffer kept from earlier batches.
  void QueueReply(const RingPacket& request, std::span<const uint8_t> payload, uint8_t traffic_class);
  Status Flush();
  uint64_t kernel_drops();  // packets the ring had no room for (PACKET_STATISTICS), since last asked
  // The recent mean time between packets' arrivals (the kernel's timestamps; a moving average
  // over about eight packets, from the first gap on), 1 s before there were two packets.
  int64_t MeanArrivalGapNs() const { return mean_gap_ns_; }

  // The filter for the UDP socket of the same port: it drops what the ring answers (IPv6 with
  // UDP right after the fixed header) and keeps the rest.
  static Status LeaveBasePacketsToTheRing(int udp_fd);

 private:
  PacketRing(int fd, uint16_t port, uint8_t* ring, size_t ring_len, size_t frames, size_t frame_size)
      : fd_(fd), port_(port), ring_(ring), ring_len_(ring_len), frames_(frames), frame_size_(frame_size) {}
  int fd_;
  uint16_t port_;
  uint8_t* ring_;
  size_t ring_len_, frames_, frame_size_;
  size_t next_ = 0;  // the next frame slot to look at
  uint64_t last_rx_ns_ = 0;
  int64_t mean_gap_ns_ = 1'000'000'000;
  bool gaps_seen_ = false;
  struct Out {
    std::vector<uint8_t> frame;
    int ifindex;
  };
  std::vector<Out> out_;  // the first queued_ are to send
  size_t queued_ = 0;
  std::vector<sockaddr_ll> to_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> msgs_;
};

// The reply frame to a base test packet answered in place: Ethernet addresses swapped, IPv6
// from the address it was sent to back to its source (hop limit 64, traffic class
// `traffic_class`), UDP ports swapped, `payload` (the reflector packet) with the checksum
// computed. `request` is the received frame, `udp_offset` its UDP header's offset.
std::vector<uint8_t> ReplyFrame(std::span<const uint8_t> request, size_t udp_offset,
                                std::span<const uint8_t> payload, uint8_t traffic_class);
// The same into `frame`, whose capacity is reused.
void WriteReplyFrame(std::vector<uint8_t>& frame, std::span<const uint8_t> request, size_t udp_offset,
                     std::span<const uint8_t> payload, uint8_t traffic_class);

}  // namespace segwan::stamp
