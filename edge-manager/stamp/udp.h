#pragma once

// The user-space STAMP engine's socket layer: IPv6 UDP sockets that report, per received
// packet, the kernel's receive time (as TAI), hop limit, traffic class and destination, and
// that send with an SRH (IPV6_RTHDR, routing type 4) and a chosen traffic class.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "segwan/clock.h"
#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::stamp {

using segwan::NowTaiNs;
using segwan::TaiUtcOffset;

struct Datagram {
  std::vector<uint8_t> payload;
  IpAddress from;
  uint16_t from_port = 0;
  IpAddress to;
  uint8_t hop_limit = 0;
  uint8_t traffic_class = 0;
  uint64_t rx_tai_ns = 0;  // the kernel's receive timestamp, TAI
};

// The IPV6_RTHDR option for a path through `waypoints` to the datagram's destination:
// segments[0] is left for the kernel to fill with the destination.
std::vector<uint8_t> SrhOption(const std::vector<IpAddress>& waypoints);

// An IPv6 UDP socket (RAII, non-blocking) bound to `address` (:: for any) and `port` (0 = any).
// The SRH goes in as the sticky IPV6_RTHDR option (the kernel takes routing type 4 there, not
// as ancillary data); it is set again only when the path changes.
class StampSocket {
 public:
  static Result<StampSocket> Open(const IpAddress& address, uint16_t port);
  StampSocket(StampSocket&& o) noexcept
      : fd_(o.fd_), srh_(std::move(o.srh_)), rx_(std::move(o.rx_)), tx_stamping_(o.tx_stamping_) {
    o.fd_ = -1;
  }
  StampSocket& operator=(StampSocket&&) = delete;
  StampSocket(const StampSocket&) = delete;
  ~StampSocket();

  int fd() const { return fd_; }
  uint16_t LocalPort() const;  // the port it is bound to (0 if unknown)
  // One datagram if there is one (nothing on EAGAIN).
  Result<std::optional<Datagram>> Receive(int32_t tai_utc_offset_s);
  // With `tx_tai_ns`, the kernel is asked for this datagram's software transmit timestamp
  // (taken by the driver as the frame leaves, SO_TIMESTAMPING): it is stored there as TAI, or
  // 0 when none came back by the time sendmsg returned (a device that does not stamp).
  Status SendTo(std::span<const uint8_t> payload, const IpAddress& to, uint16_t port,
                const std::vector<IpAddress>& waypoints, std::optional<uint8_t> dscp,
                uint64_t* tx_tai_ns = nullptr, int32_t tai_utc_offset_s = 0);

 private:
  explicit StampSocket(int fd) : fd_(fd), rx_(kMaxDatagram) {}
  static constexpr size_t kMaxDatagram = 9000;
  int fd_;
  std::vector<uint8_t> srh_;  // the sticky routing header now set
  std::vector<uint8_t> rx_;   // receive buffer, allocated once
  bool tx_stamping_ = false;
 public:
  // Empties the error queue (a transmit timestamp that came after SendTo stopped waiting).
  void DiscardErrors() {
    if (tx_stamping_) TakeTxTimestamp(~0ULL, 0);
  }
 private:  // SO_TIMESTAMPING's reporting flags are set
  uint64_t TakeTxTimestamp(uint64_t not_before_realtime_ns, int32_t tai_utc_offset_s);
};

}  // namespace segwan::stamp
