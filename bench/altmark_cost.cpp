// Per-packet cost of the alternate-marking programs under BPF_PROG_TEST_RUN, next to
// pass-through baselines built from bpf/xdp_baselines.bpf.c and measured in the same run:
// altmark_tx and altmark_rx_tc (the receive side the agent attaches) against tc_pass,
// altmark_rx (XDP) against xdp_pass, for a packet of a
// monitored flow and for other traffic (which must cost near nothing). 2,000,000 rounds in the
// kernel per run (the programs leave a frame as it is after its first round), median of 7.
// Prints one JSON object per measurement.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "altmark.skel.h"
#include "packet.h"
#include "segwan_altmark.h"
#include "xdp_baselines.skel.h"

using segwan::IpAddress;
using segwan::ParseIp;
using segwan::testing::BuildFrame;
using segwan::testing::FrameSpec;
using segwan::testing::RunXdp;

namespace {

double Repeated(int fd, const std::vector<uint8_t>& frame) {
  std::vector<uint32_t> v;
  for (int i = 0; i < 7; ++i) {
    auto r = RunXdp(fd, frame, 2'000'000);
    if (!r) return -1;
    v.push_back(r->duration_ns);
  }
  std::nth_element(v.begin(), v.begin() + 3, v.end());
  return v[3];
}

std::vector<uint8_t> Encapsulated(const std::vector<IpAddress>& srh_order) {
  FrameSpec s;
  s.srh_segments = srh_order;
  s.segments_left = static_cast<uint8_t>(srh_order.size() - 1);
  s.dst = srh_order.back();
  s.payload.assign(64, 0);
  return BuildFrame(s);
}

void Report(const char* program, const char* packet, double ns, const char* baseline, double base_ns) {
  std::printf(R"({"bench":"altmark_cost","program":"%s","packet":"%s","ns":%.1f,"baseline":"%s","baseline_ns":%.1f,"over_baseline_ns":%.1f})"
              "\n", program, packet, ns, baseline, base_ns, ns - base_ns);
}

}  // namespace

int main() {
  if (geteuid() != 0) {
    std::printf(R"({"bench":"altmark_cost","skipped":"needs root to load BPF programs"})" "\n");
    return 0;
  }
  altmark* am = altmark__open_and_load();
  xdp_baselines* base = xdp_baselines__open_and_load();
  if (!am || !base) {
    std::printf(R"({"bench":"altmark_cost","skipped":"the kernel refused the programs"})" "\n");
    return 0;
  }
  const IpAddress p1 = *ParseIp("fc00:0:1::e"), decap = *ParseIp("fc00:0:b:1::d6"), other = *ParseIp("fc00:0:c:1::d6");
  altmark_flow_key key{};
  key.nsegs = 2;
  std::memcpy(key.segs[0], decap.bytes.data(), 16);
  std::memcpy(key.segs[1], p1.bytes.data(), 16);
  altmark_flow flow{1, 1};
  bpf_map__update_elem(am->maps.altmark_tx_flows, &key, sizeof key, &flow, sizeof flow, BPF_ANY);
  bpf_map__update_elem(am->maps.altmark_rx_flows, &key, sizeof key, &flow, sizeof flow, BPF_ANY);
  altmark_addr head{};
  std::memcpy(head.addr, p1.bytes.data(), 16);
  uint32_t one = 1;
  bpf_map__update_elem(am->maps.altmark_tx_heads, &head, sizeof head, &one, sizeof one, BPF_ANY);

  const auto monitored = Encapsulated({decap, p1});
  const auto same_head = Encapsulated({other, p1});  // passes the quick filter, then misses
  FrameSpec plain_spec;
  plain_spec.dst = *ParseIp("fc00:0:9::1");
  const auto plain = BuildFrame(plain_spec);
  auto marked = monitored;
  marked[15] = static_cast<uint8_t>(marked[15] | ((ALTMARK_DEFAULT_FLAG | ALTMARK_DEFAULT_COLOUR) << 4));

  const int tc_pass = bpf_program__fd(base->progs.tc_pass), xdp_pass = bpf_program__fd(base->progs.xdp_pass);
  const int tx = bpf_program__fd(am->progs.altmark_tx), rx = bpf_program__fd(am->progs.altmark_rx);
  const int rx_tc = bpf_program__fd(am->progs.altmark_rx_tc);  // what the agent attaches
  double b = Repeated(tc_pass, plain);
  Report("altmark_tx", "other traffic", Repeated(tx, plain), "tc_pass", b);
  Report("altmark_tx", "same first SID, other flow", Repeated(tx, same_head), "tc_pass", b);
  Report("altmark_tx", "monitored flow (colour + count)", Repeated(tx, monitored), "tc_pass", b);
  Report("altmark_rx_tc", "unmarked", Repeated(rx_tc, plain), "tc_pass", b);
  Report("altmark_rx_tc", "marked, monitored flow (count)", Repeated(rx_tc, marked), "tc_pass", b);
  b = Repeated(xdp_pass, plain);
  Report("altmark_rx", "unmarked", Repeated(rx, plain), "xdp_pass", b);
  Report("altmark_rx", "marked, monitored flow (count)", Repeated(rx, marked), "xdp_pass", b);
  altmark__destroy(am);
  xdp_baselines__destroy(base);
  return 0;
}
