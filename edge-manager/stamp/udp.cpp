#include "edge-manager/stamp/udp.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <linux/seg6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace segwan::stamp {

static Error Errno(const std::string& what) { return Error{what + ": " + std::strerror(errno), "", errno}; }

Result<StampSocket> StampSocket::Open(const IpAddress& address, uint16_t port) {
  if (address.family != AF_INET6) return FieldError("address", "the STAMP engine speaks IPv6");
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
  setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one);
  setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  // Binding to a non-local address is fine for a STAMP address that is only a route.
  setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  std::memcpy(&sa.sin6_addr, address.bytes.data(), 16);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    auto e = Errno("bind [" + address.ToString() + "]:" + std::to_string(port));
    close(fd);
    return e;
  }
  return StampSocket(fd);
}

uint16_t StampSocket::LocalPort() const {
  sockaddr_in6 sa{};
  socklen_t len = sizeof sa;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.sin6_port);
}

StampSocket::~StampSocket() {
  if (fd_ >= 0) close(fd_);
}

Result<std::optional<Datagram>> StampSocket::Receive(int32_t tai_utc_offset_s) {
  Datagram d;
  sockaddr_in6 from{};
  iovec iov{rx_.data(), rx_.size()};
  alignas(cmsghdr) char control[512];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(fd_, &msg, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<Datagram>();
    return Errno("recvmsg");
  }
  d.payload.assign(rx_.begin(), rx_.begin() + n);
  d.from.family = AF_INET6;
  std::memcpy(d.from.bytes.data(), &from.sin6_addr, 16);
  d.from_port = ntohs(from.sin6_port);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
      int v;
      std::memcpy(&v, CMSG_DATA(c), sizeof v);
      d.hop_limit = static_cast<uint8_t>(v);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
      int v;
      std::memcpy(&v, CMSG_DATA(c), sizeof v);
      d.traffic_class = static_cast<uint8_t>(v);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      d.to.family = AF_INET6;
      std::memcpy(d.to.bytes.data(), &pi.ipi6_addr, 16);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      // the kernel stamps with CLOCK_REALTIME; TAI = UTC + offset
      d.rx_tai_ns = (static_cast<uint64_t>(ts.tv_sec) + static_cast<uint64_t>(tai_utc_offset_s)) *
                        1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
    }
  }
  if (d.rx_tai_ns == 0) d.rx_tai_ns = NowTaiNs();  // no kernel timestamp: the next best thing
  return std::optional<Datagram>(std::move(d));
}

std::vector<uint8_t> SrhOption(const std::vector<IpAddress>& waypoints) {
  if (waypoints.empty()) return {};
  const size_t n = waypoints.size() + 1;  // + the final destination in segments[0]
  std::vector<uint8_t> buf(sizeof(ipv6_sr_hdr) + 16 * n, 0);
  auto* srh = reinterpret_cast<ipv6_sr_hdr*>(buf.data());
  srh->hdrlen = static_cast<uint8_t>(2 * n);
  srh->type = 4;
  srh->segments_left = static_cast<uint8_t>(n - 1);
  srh->first_segment = static_cast<uint8_t>(n - 1);
  for (size_t i = 0; i < waypoints.size(); ++i) {  // first waypoint = segments[n-1]
    std::memcpy(buf.data() + sizeof(ipv6_sr_hdr) + 16 * (n - 1 - i), waypoints[i].bytes.data(), 16);
  }
  return buf;
}

namespace {
uint64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

// The newest software transmit timestamp on the error queue that is not older than the send
// it answers (a late one of an earlier send is read and passed over); the queue is emptied.
uint64_t StampSocket::TakeTxTimestamp(uint64_t not_before_realtime_ns, int32_t tai_utc_offset_s) {
  uint64_t best = 0;
  for (int i = 0; i < 16; ++i) {
    alignas(cmsghdr) char control[256];
    msghdr msg{};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(fd_, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_TIMESTAMPING) continue;
      scm_timestamping ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      const uint64_t ns = static_cast<uint64_t>(ts.ts[0].tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.ts[0].tv_nsec);
      if (ns >= not_before_realtime_ns) best = std::max(best, ns);
    }
  }
  if (best == 0) return 0;
  return best + static_cast<uint64_t>(tai_utc_offset_s) * 1'000'000'000ULL;
}

Status StampSocket::SendTo(std::span<const uint8_t> payload, const IpAddress& to, uint16_t port,
                           const std::vector<IpAddress>& waypoints, std::optional<uint8_t> dscp,
                           uint64_t* tx_tai_ns, int32_t tai_utc_offset_s) {
  if (tx_tai_ns) {
    *tx_tai_ns = 0;
    if (!tx_stamping_) {  // report software timestamps, without the packet; asked per datagram
      const int flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY;
      if (setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) < 0) return Errno("SO_TIMESTAMPING");
      tx_stamping_ = true;
    }
  }
  const auto srh = SrhOption(waypoints);
  if (srh != srh_) {
    if (setsockopt(fd_, IPPROTO_IPV6, IPV6_RTHDR, srh.empty() ? nullptr : srh.data(),
                   static_cast<socklen_t>(srh.size())) < 0) {
      return Errno("routing header for " + std::to_string(waypoints.size()) + " SIDs");
    }
    srh_ = srh;
  }
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  std::memcpy(&sa.sin6_addr, to.bytes.data(), 16);
  iovec iov{const_cast<uint8_t*>(payload.data()), payload.size()};
  alignas(cmsghdr) char control[2 * CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = &sa;
  msg.msg_namelen = sizeof sa;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  size_t used = 0;
  auto add = [&](int level, int type, int value) {
    msg.msg_controllen = used + CMSG_SPACE(sizeof value);
    cmsghdr* c = used == 0 ? CMSG_FIRSTHDR(&msg) : reinterpret_cast<cmsghdr*>(control + used);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(sizeof value);
    std::memcpy(CMSG_DATA(c), &value, sizeof value);
    used += CMSG_SPACE(sizeof value);
  };
  if (dscp) add(IPPROTO_IPV6, IPV6_TCLASS, *dscp << 2);
  if (tx_tai_ns) add(SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SOFTWARE);
  if (used == 0) msg.msg_control = nullptr;
  const uint64_t before = tx_tai_ns ? RealtimeNs() : 0;
  if (sendmsg(fd_, &msg, 0) < 0) return Errno("sendmsg to [" + to.ToString() + "]:" + std::to_string(port));
  if (tx_tai_ns) *tx_tai_ns = TakeTxTimestamp(before, tai_utc_offset_s);
  return Status::Ok();
}

}  // namespace segwan::stamp
