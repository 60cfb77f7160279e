// bench_stamp_pps_helper: the kernel side of bench/stamp_pps.sh, run inside its namespaces.
//   count IFNAME WARMUP_S WINDOW_S  counts (and drops) what arrives on IFNAME in XDP; prints
//                                   {"pps": N} over the window after the warm-up
//   min IFNAME                      holds the minimal XDP reflector on IFNAME until SIGTERM
//   stamp IFNAME ADDR               holds SegWAN's STAMP XDP program on IFNAME, reflecting SSID 1
//                                   (unauthenticated, stateless, no SRH) at ADDR:862, until SIGTERM
// "ready" on stdout once attached; everything is detached on exit.
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "edge-manager/stamp/xdp_stamp.h"
#include "xdp_baselines.skel.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

void WaitForSignal() {
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  std::printf("ready\n");
  std::fflush(stdout);
  while (!g_stop) pause();
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "bench_stamp_pps_helper: %s\n", what.c_str());
  return 1;
}

// Attaches `prog` to `ifindex` in native mode; detaches it when it goes.
class Attached {
 public:
  Attached(int ifindex, int prog) : ifindex_(ifindex) {
    err_ = bpf_xdp_attach(ifindex, prog, XDP_FLAGS_DRV_MODE, nullptr);
  }
  ~Attached() {
    if (err_ == 0) bpf_xdp_detach(ifindex_, XDP_FLAGS_DRV_MODE, nullptr);
  }
  int error() const { return err_; }

 private:
  int ifindex_, err_;
};

int Baselines(const std::string& mode, int ifindex, int argc, char** argv) {
  xdp_baselines* skel = xdp_baselines__open_and_load();
  if (!skel) return Fail("cannot load the baseline programs");
  int rc = 0;
  {
    Attached a(ifindex, bpf_program__fd(mode == "count" ? skel->progs.xdp_count_drop : skel->progs.xdp_min_reflector));
    if (a.error()) {
      rc = Fail("attach: " + std::string(std::strerror(-a.error())));
    } else if (mode == "count") {
      if (argc < 5) {
        rc = Fail("count IFNAME WARMUP_S WINDOW_S");
      } else {
        const double warmup = std::stod(argv[3]), window = std::stod(argv[4]);
        std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
        const uint64_t a0 = skel->bss->xdp_counted;
        std::this_thread::sleep_for(std::chrono::duration<double>(window));
        const uint64_t a1 = skel->bss->xdp_counted;
        std::printf("{\"pps\": %.0f}\n", static_cast<double>(a1 - a0) / window);
      }
    } else {
      WaitForSignal();
    }
  }
  xdp_baselines__destroy(skel);
  return rc;
}

int Stamp(const std::string& ifname, const std::string& addr) {
  using namespace segwan;
  auto x = stamp::XdpStamp::Load();
  if (!x) return Fail(x.error().message);
  auto a = ParseIpv6(addr);
  if (!a) return Fail("not an IPv6 address: " + addr);
  stamp::ReflectorSessionConfig c{.ssid = 1};
  if (auto st = (*x)->AddListener(*a, stamp::kDefaultPort); !st) return Fail(st.error().message);
  if (auto st = (*x)->SetSession(c, *a, stamp::kDefaultPort); !st) return Fail(st.error().message);
  if (auto st = (*x)->Attach(ifname); !st) return Fail(st.error().message);
  WaitForSignal();
  // The program's verdicts, for a run that reflected less than it was offered
  for (const auto& [reason, n] : (*x)->Reasons())
    if (n) std::fprintf(stderr, "%s %llu\n", reason.c_str(), static_cast<unsigned long long>(n));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Fail("usage: count IFNAME WARMUP_S WINDOW_S | min IFNAME | stamp IFNAME ADDR");
  const std::string mode = argv[1];
  const int ifindex = static_cast<int>(if_nametoindex(argv[2]));
  if (ifindex == 0) return Fail(std::string("no interface ") + argv[2]);
  if (mode == "count" || mode == "min") return Baselines(mode, ifindex, argc, argv);
  if (mode == "stamp" && argc >= 4) return Stamp(argv[2], argv[3]);
  return Fail("unknown mode " + mode);
}
