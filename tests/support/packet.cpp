#include "packet.h"

#include <bpf/bpf.h>
#include <linux/if_ether.h>

#include <net/if.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>

namespace segwan::testing {

namespace {
void Put16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
uint32_t Sum(std::span<const uint8_t> b, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < b.size(); i += 2) sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (b.size() % 2) sum += static_cast<uint32_t>(b.back() << 8);
  return sum;
}
uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
uint16_t UdpChecksum6(const uint8_t* src, const uint8_t* dst, std::span<const uint8_t> udp) {
  uint32_t sum = Sum({src, 16}) + Sum({dst, 16}) + static_cast<uint32_t>(udp.size()) + 17;
  std::vector<uint8_t> copy(udp.begin(), udp.end());
  copy[6] = copy[7] = 0;
  const uint16_t c = Fold(Sum(copy, sum));
  return c == 0 ? 0xffff : c;
}
}  // namespace

std::vector<uint8_t> BuildFrame(const FrameSpec& s) {
  std::vector<uint8_t> f(14, 0);
  std::memcpy(f.data(), s.dst_mac.data(), 6);
  std::memcpy(f.data() + 6, s.src_mac.data(), 6);
  const size_t udp_len = 8 + s.payload.size();
  if (s.ipv4) {
    Put16(f, 12, ETH_P_IP);
    const size_t ip = f.size();
    f.resize(ip + 20, 0);
    f[ip] = 0x45;
    Put16(f, ip + 2, static_cast<uint16_t>(20 + udp_len));
    f[ip + 8] = s.hop_limit;
    f[ip + 9] = 17;
    const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
    std::memcpy(&f[ip + 12], a, 4);
    std::memcpy(&f[ip + 16], b, 4);
    Put16(f, ip + 10, Fold(Sum({&f[ip], 20})));
  } else {
    Put16(f, 12, ETH_P_IPV6);
    const size_t ip = f.size();
    const size_t srh_len = s.srh_segments.empty() ? 0 : 8 + 16 * s.srh_segments.size();
    f.resize(ip + 40 + srh_len, 0);
    f[ip] = static_cast<uint8_t>(0x60 | s.traffic_class >> 4);
    f[ip + 1] = static_cast<uint8_t>((s.traffic_class & 0xf) << 4);
    Put16(f, ip + 4, static_cast<uint16_t>(srh_len + udp_len));
    f[ip + 6] = srh_len ? 43 : 17;
    f[ip + 7] = s.hop_limit;
    std::memcpy(&f[ip + 8], s.src.bytes.data(), 16);
    std::memcpy(&f[ip + 24], s.dst.bytes.data(), 16);
    if (srh_len) {
      const size_t h = ip + 40;
      f[h] = 17;
      f[h + 1] = static_cast<uint8_t>(2 * s.srh_segments.size());
      f[h + 2] = 4;
      f[h + 3] = s.segments_left;
      f[h + 4] = static_cast<uint8_t>(s.srh_segments.size() - 1);
      for (size_t i = 0; i < s.srh_segments.size(); ++i) {
        std::memcpy(&f[h + 8 + 16 * i], s.srh_segments[i].bytes.data(), 16);
      }
    }
  }
  const size_t u = f.size();
  f.resize(u + udp_len, 0);
  Put16(f, u, s.sport);
  Put16(f, u + 2, s.dport);
  Put16(f, u + 4, static_cast<uint16_t>(udp_len));
  std::memcpy(&f[u + 8], s.payload.data(), s.payload.size());
  if (!s.ipv4) {
    const uint8_t* final_dst = s.srh_segments.empty() ? s.dst.bytes.data() : s.srh_segments[0].bytes.data();
    Put16(f, u + 6, UdpChecksum6(s.src.bytes.data(), final_dst, {&f[u], udp_len}));
  }
  return f;
}

size_t UdpOffset(std::span<const uint8_t> f) {
  if (f.size() < 54 || f[12] != 0x86 || f[13] != 0xdd) return 0;
  size_t off = 54;
  uint8_t nh = f[20];
  if (nh == 43) {
    if (f.size() < off + 8) return 0;
    nh = f[off];
    off += 8u * (f[off + 1] + 1u);
  }
  return nh == 17 && f.size() >= off + 8 ? off : 0;
}

bool UdpChecksumOk(std::span<const uint8_t> f) {
  const size_t u = UdpOffset(f);
  if (!u) return false;
  const uint8_t* dst = &f[38];
  if (f[20] == 43) dst = &f[54 + 8];  // SRH segments[0]: the final destination
  const size_t len = static_cast<size_t>(f[u + 4] << 8 | f[u + 5]);
  if (u + len > f.size()) return false;
  const uint16_t want = UdpChecksum6(&f[22], dst, f.subspan(u, len));
  return want == static_cast<uint16_t>(f[u + 6] << 8 | f[u + 7]);
}

bool UdpChecksumOkAsReceived(std::span<const uint8_t> f) {
  const size_t u = UdpOffset(f);
  if (!u) return false;
  const size_t len = static_cast<size_t>(f[u + 4] << 8 | f[u + 5]);
  if (u + len > f.size()) return false;
  const uint16_t want = UdpChecksum6(&f[22], &f[38], f.subspan(u, len));
  return want == static_cast<uint16_t>(f[u + 6] << 8 | f[u + 7]);
}

std::optional<RunResult> RunXdp(int prog_fd, std::span<const uint8_t> frame, uint32_t repeat,
                                int ingress_ifindex) {
  RunResult r;
  r.out.resize(frame.size() + 512);
  xdp_md md{};
  md.data_end = static_cast<uint32_t>(frame.size());
  md.ingress_ifindex = static_cast<uint32_t>(ingress_ifindex);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_out = r.out.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
              .data_size_out = static_cast<uint32_t>(r.out.size()),
              .repeat = static_cast<int>(repeat));
  if (ingress_ifindex) {
    opts.ctx_in = &md;
    opts.ctx_size_in = sizeof md;
  }
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) return std::nullopt;
  r.retval = static_cast<int>(opts.retval);
  r.out.resize(opts.data_size_out);
  r.duration_ns = opts.duration;
  return r;
}

ReflectorNetns EnterReflectorNetns() {
  ReflectorNetns n;
  if (unshare(CLONE_NEWNET) != 0) {
    n.error = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    return n;
  }
  // iproute2 is a dependency of the lab anyway; children share this namespace.
  const char* script =
      "set -e; exec >/dev/null 2>&1; ip link set lo up; "
      "ip link add a0 address 02:00:00:00:0a:00 type veth peer name a1; "
      "ip link add b0 address 02:00:00:00:0b:00 type veth peer name b1; "
      "for l in a0 a1 b0 b1; do ip link set dev $l up; done; "
      "sysctl -qw net.ipv6.conf.all.forwarding=1; "
      "ip -6 addr add fc00:0:b::1/128 dev lo; "
      "ip -6 addr add fd5e:0:b1::1/64 dev a0 nodad; ip -6 addr add fd5e:0:b2::1/64 dev b0 nodad; "
      "ip -6 neigh add fd5e:0:b1::2 lladdr 02:00:00:00:0a:01 dev a0 nud permanent; "
      "ip -6 neigh add fd5e:0:b2::2 lladdr 02:00:00:00:0b:01 dev b0 nud permanent; "
      "ip -6 route add fc00:0:a::/48 via fd5e:0:b1::2 dev a0; "
      "ip -6 route add fc00:0:1::/48 via fd5e:0:b1::2 dev a0; "
      "ip -6 route add fc00:0:2::/48 via fd5e:0:b2::2 dev b0";
  const std::string cmd = std::string("bash -c '") + script + "'";
  if (std::system(cmd.c_str()) != 0) {
    n.error = "could not lay out the test namespace with iproute2";
    return n;
  }
  n.a0 = static_cast<int>(if_nametoindex("a0"));
  n.b0 = static_cast<int>(if_nametoindex("b0"));
  if (!n.a0 || !n.b0) n.error = "test links missing";
  return n;
}

}  // namespace segwan::testing
