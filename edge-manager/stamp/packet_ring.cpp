#include "edge-manager/stamp/packet_ring.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace segwan::stamp {

namespace {

constexpr size_t kEth = 14, kIp6 = 40, kUdp = 8;
constexpr size_t kFrameSize = 2048;  // one slot: a base test packet with TLVs fits many times
constexpr size_t kBlockSize = 1 << 16;
constexpr size_t kBlocks = 16;       // 512 slots

Error Errno(const std::string& what) { return Error{what + ": " + std::strerror(errno), "", errno}; }

uint16_t Fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint64_t Sum16(std::span<const uint8_t> b) {
  uint64_t s = 0;
  size_t i = 0;
  for (; i + 1 < b.size(); i += 2) s += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (i < b.size()) s += static_cast<uint32_t>(b[i] << 8);
  return s;
}

}  // namespace

void WriteReplyFrame(std::vector<uint8_t>& f, std::span<const uint8_t> req, size_t udp_offset,
                     std::span<const uint8_t> payload, uint8_t tclass) {
  const size_t ip = udp_offset - kIp6;
  const size_t udp_len = kUdp + payload.size();
  f.resize(kEth + kIp6 + udp_len);  // every byte written below: a reused buffer needs no clearing
  std::memcpy(&f[0], &req[6], 6);   // to the neighbour it came from
  std::memcpy(&f[6], &req[0], 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  uint8_t* h = &f[kEth];
  h[0] = static_cast<uint8_t>(0x60 | tclass >> 4);
  h[1] = static_cast<uint8_t>((tclass & 0x0f) << 4);
  h[2] = h[3] = 0;  // flow label
  h[4] = static_cast<uint8_t>(udp_len >> 8);
  h[5] = static_cast<uint8_t>(udp_len);
  h[6] = IPPROTO_UDP;
  h[7] = 64;
  std::memcpy(h + 8, &req[ip + 24], 16);   // source: the address it was sent to
  std::memcpy(h + 24, &req[ip + 8], 16);   // destination: its source
  uint8_t* u = h + kIp6;
  std::memcpy(u, &req[udp_offset + 2], 2);  // source port: the STAMP port
  std::memcpy(u + 2, &req[udp_offset], 2);  // destination: the sender's
  u[4] = static_cast<uint8_t>(udp_len >> 8);
  u[5] = static_cast<uint8_t>(udp_len);
  u[6] = u[7] = 0;
  std::memcpy(u + kUdp, payload.data(), payload.size());
  // RFC 8200 §8.1: over the pseudo-header (addresses, length, next header) and the datagram.
  const uint16_t c = Fold(Sum16({h + 8, 32}) + udp_len + IPPROTO_UDP + Sum16({u, udp_len}));
  const uint16_t check = c ? c : 0xffff;
  u[6] = static_cast<uint8_t>(check >> 8);
  u[7] = static_cast<uint8_t>(check);
}

std::vector<uint8_t> ReplyFrame(std::span<const uint8_t> req, size_t udp_offset,
                                std::span<const uint8_t> payload, uint8_t tclass) {
  std::vector<uint8_t> f;
  WriteReplyFrame(f, req, udp_offset, payload, tclass);
  return f;
}

bool Ipv6InputWouldTake(std::span<const uint8_t> f, size_t ip, size_t udp_len) {
  if (f.size() < ip + kIp6 + kUdp) return false;
  if (f[ip] >> 4 != 6 || static_cast<size_t>(f[ip + 4] << 8 | f[ip + 5]) != udp_len) return false;
  const uint8_t* src = &f[ip + 8];
  const uint8_t* dst = &f[ip + 24];
  auto zero15 = [](const uint8_t* a) { return std::all_of(a, a + 15, [](uint8_t x) { return x == 0; }); };
  if (src[0] == 0xff || (zero15(src) && src[15] == 0)) return false;
  if (zero15(src) && src[15] == 1 && !(zero15(dst) && dst[15] == 1)) return false;
  return !(f[ip + kIp6] == 0 && f[ip + kIp6 + 1] == 0);
}

bool UdpChecksumOk(std::span<const uint8_t> f, size_t udp) {
  if (udp < kIp6 || f.size() < udp + kUdp) return false;
  const size_t len = static_cast<size_t>(f[udp + 4] << 8 | f[udp + 5]);
  if (len < kUdp || udp + len > f.size() || (f[udp + 6] == 0 && f[udp + 7] == 0)) return false;
  const uint64_t sum = Sum16(f.subspan(udp - 32, 32)) + len + IPPROTO_UDP + Sum16(f.subspan(udp, len));
  return Fold(sum) == 0;
}

Result<PacketRing> PacketRing::Open(uint16_t port) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_IPV6));
  if (fd < 0) return Errno("AF_PACKET socket");
  auto fail = [&](const std::string& what) {
    auto e = Errno(what);
    close(fd);
    return e;
  };
  // Only IPv6 whose next header is UDP, to this port, on an interface with an Ethernet header
  // (the rest never reaches the ring; the UDP socket's filter keeps exactly that rest).
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_HATYPE)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARPHRD_ETHER, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARPHRD_LOOPBACK, 0, 7),
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 5),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, kEth + 6),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, kEth + kIp6 + 2),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return fail("ring filter");
  int v = TPACKET_V2;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0) return fail("TPACKET_V2");
  // No PACKET_QDISC_BYPASS: replies sent past the qdisc layer are invisible to tcpdump on the
  // reflector, which an operator debugging a session must see.
  tpacket_req req{};
  req.tp_block_size = kBlockSize;
  req.tp_block_nr = kBlocks;
  req.tp_frame_size = kFrameSize;
  req.tp_frame_nr = kBlockSize / kFrameSize * kBlocks;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return fail("PACKET_RX_RING");
  const size_t len = kBlockSize * kBlocks;
  void* ring = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (ring == MAP_FAILED) return fail("mmap of the ring");
  sockaddr_ll sa{};
  sa.sll_family = AF_PACKET;
  sa.sll_protocol = htons(ETH_P_IPV6);
  sa.sll_ifindex = 0;  // every interface
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    munmap(ring, len);
    return fail("bind AF_PACKET");
  }
  return PacketRing(fd, port, static_cast<uint8_t*>(ring), len, req.tp_frame_nr, kFrameSize);
}

PacketRing::PacketRing(PacketRing&& o) noexcept
    : fd_(o.fd_), port_(o.port_), ring_(o.ring_), ring_len_(o.ring_len_), frames_(o.frames_),
      frame_size_(o.frame_size_), next_(o.next_), last_rx_ns_(o.last_rx_ns_), mean_gap_ns_(o.mean_gap_ns_),
      gaps_seen_(o.gaps_seen_), out_(std::move(o.out_)), queued_(o.queued_) {
  o.fd_ = -1;
  o.ring_ = nullptr;
}

PacketRing::~PacketRing() {
  if (ring_) munmap(ring_, ring_len_);
  if (fd_ >= 0) close(fd_);
}

size_t PacketRing::Drain(const std::function<void(const RingPacket&)>& on, size_t max) {
  size_t n = 0;
  while (n < max) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(ring_ + next_ * frame_size_);
    if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
    const auto* ll = reinterpret_cast<const sockaddr_ll*>(reinterpret_cast<uint8_t*>(h) + TPACKET_ALIGN(sizeof(tpacket2_hdr)));
    const size_t snap = h->tp_snaplen;
    const uint64_t rx_ns = static_cast<uint64_t>(h->tp_sec) * 1'000'000'000ULL + h->tp_nsec;
    if (last_rx_ns_) {
      // A clock step must not stick: a gap counts between 0 and 1 s.
      const int64_t gap = rx_ns > last_rx_ns_ ? std::min<int64_t>(static_cast<int64_t>(rx_ns - last_rx_ns_), 1'000'000'000) : 0;
      mean_gap_ns_ = gaps_seen_ ? mean_gap_ns_ + (gap - mean_gap_ns_) / 8 : gap;
      gaps_seen_ = true;
    }
    last_rx_ns_ = rx_ns;
    const bool whole = !(h->tp_status & TP_STATUS_COPY) && snap == h->tp_len;
    if (whole && ll->sll_pkttype != PACKET_OUTGOING && h->tp_mac + snap <= frame_size_ &&
        h->tp_net == h->tp_mac + kEth && snap >= kEth + kIp6 + kUdp) {
      on(RingPacket{{reinterpret_cast<uint8_t*>(h) + h->tp_mac, snap}, kEth + kIp6, rx_ns, ll->sll_ifindex,
                    (h->tp_status & (TP_STATUS_CSUM_VALID | TP_STATUS_CSUMNOTREADY)) != 0});
    }
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    next_ = (next_ + 1) % frames_;
    ++n;
  }
  return n;
}

void PacketRing::QueueReply(const RingPacket& request, std::span<const uint8_t> payload, uint8_t traffic_class) {
  if (queued_ == out_.size()) out_.emplace_back();
  WriteReplyFrame(out_[queued_].frame, request.frame, request.udp_offset, payload, traffic_class);
  out_[queued_].ifindex = request.ifindex;
  ++queued_;
}

Status PacketRing::Flush() {
  if (queued_ == 0) return Status::Ok();
  // The buffers stay between batches: nothing is allocated per packet once they have grown.
  auto& to = to_;
  auto& iov = iov_;
  auto& msgs = msgs_;
  to.assign(queued_, sockaddr_ll{});
  iov.resize(queued_);
  msgs.resize(queued_);
  for (size_t i = 0; i < queued_; ++i) {
    to[i].sll_family = AF_PACKET;
    to[i].sll_protocol = htons(ETH_P_IPV6);
    to[i].sll_ifindex = out_[i].ifindex;
    to[i].sll_halen = 6;
    std::memcpy(to[i].sll_addr, out_[i].frame.data(), 6);
    iov[i] = {out_[i].frame.data(), out_[i].frame.size()};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_name = &to[i];
    msgs[i].msg_hdr.msg_namelen = sizeof to[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  size_t sent = 0;
  Status st = Status::Ok();
  while (sent < msgs.size()) {
    const int n = sendmmsg(fd_, msgs.data() + sent, static_cast<unsigned>(msgs.size() - sent), 0);
    if (n <= 0) {
      st = Errno("sendmmsg of " + std::to_string(msgs.size() - sent) + " replies");
      break;
    }
    sent += static_cast<size_t>(n);
  }
  queued_ = 0;
  return st;
}

uint64_t PacketRing::kernel_drops() {
  tpacket_stats s{};
  socklen_t len = sizeof s;
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &s, &len) < 0) return 0;
  return s.tp_drops;
}

Status PacketRing::LeaveBasePacketsToTheRing(int udp_fd) {
  // A UDP socket's filter sees the datagram; the IPv6 header is reachable at SKF_NET_OFF.
  // Dropped: what the ring takes (UDP right after the IPv6 header, from an Ethernet or the
  // loopback interface); kept: an extension header, or an interface without Ethernet header.
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_HATYPE)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARPHRD_ETHER, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARPHRD_LOOPBACK, 0, 3),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, static_cast<uint32_t>(SKF_NET_OFF + 6)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),       // the ring answers it
      BPF_STMT(BPF_RET | BPF_K, 0xffff),  // this socket
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
  if (setsockopt(udp_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return Errno("UDP socket filter");
  return Status::Ok();
}

}  // namespace segwan::stamp
