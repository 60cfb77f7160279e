// Per-packet cost of XDP programs under BPF_PROG_TEST_RUN, each next to its baseline measured
// in the same run. Prints one JSON object per measurement.
//
// The kernel reuses the input buffer across `repeat`, so a program sees its own output on the
// next round: the STAMP frame uses port 862 on both sides so that a reflector's swap still
// leaves a frame it reflects again.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "packet.h"
#include "xdp_baselines.skel.h"

using segwan::testing::BuildFrame;
using segwan::testing::RunXdp;

namespace {

constexpr uint32_t kRepeat = 2'000'000;
constexpr int kRounds = 7;

// Median over rounds of the kernel's average ns per run.
double MedianNs(int fd, const std::vector<uint8_t>& frame, int* retval) {
  std::vector<double> v;
  for (int i = 0; i < kRounds; ++i) {
    auto r = RunXdp(fd, frame, kRepeat);
    if (!r) return -1;
    *retval = r->retval;
    v.push_back(r->duration_ns);
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Report(const char* name, const char* frame, double ns, const char* base, double base_ns) {
  std::printf(
      "{\"bench\": \"xdp_per_packet_ns\", \"program\": \"%s\", \"frame\": \"%s\", \"ns\": %.1f, "
      "\"baseline\": \"%s\", \"baseline_ns\": %.1f, \"ratio\": %.3f, \"repeat\": %u, "
      "\"rounds\": %d}\n",
      name, frame, ns, base, base_ns, base_ns > 0 ? ns / base_ns : 0.0, kRepeat, kRounds);
}

}  // namespace

int main() {
  if (geteuid() != 0) {
    std::printf("{\"bench\": \"xdp_per_packet_ns\", \"skipped\": \"needs root to load BPF\"}\n");
    return 0;
  }
  xdp_baselines* skel = xdp_baselines__open_and_load();
  if (!skel) {
    std::printf("{\"bench\": \"xdp_per_packet_ns\", \"skipped\": \"the kernel refused the programs\"}\n");
    return 0;
  }
  std::vector<uint8_t> payload(44, 0);
  const auto stamp = BuildFrame({.sport = 862, .dport = 862, .payload = payload});
  const auto other = BuildFrame({.sport = 5000, .dport = 53, .payload = payload});
  int rv_pass = 0, rv_min = 0, rv_other = 0;
  const double pass = MedianNs(bpf_program__fd(skel->progs.xdp_pass), stamp, &rv_pass);
  const double min = MedianNs(bpf_program__fd(skel->progs.xdp_min_reflector), stamp, &rv_min);
  const double other_ns = MedianNs(bpf_program__fd(skel->progs.xdp_min_reflector), other, &rv_other);
  xdp_baselines__destroy(skel);
  if (rv_min != 3 /* XDP_TX */ || rv_other != 2 /* XDP_PASS */) {
    std::fprintf(stderr, "unexpected verdicts: reflector %d, non-STAMP %d\n", rv_min, rv_other);
    return 1;
  }
  Report("xdp_min_reflector", "stamp-ipv6-udp", min, "xdp_pass", pass);
  Report("xdp_min_reflector", "non-stamp-udp", other_ns, "xdp_pass", pass);
  return 0;
}
