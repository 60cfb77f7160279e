// Holds the alternate-marking programs on an interface for the forwarding benchmark, like the
// agent does, until SIGTERM:  bench_altmark_attach IFNAME [SID,SID,...]
// With a SID list, that flow is monitored at ingress (coloured and counted); without, the
// programs are attached but monitor nothing (the cost of other traffic).
#include <signal.h>

#include <cstdio>
#include <sstream>

#include "edge-manager/loss/altmark.h"
#include "segwan/cli.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IFNAME [SID,SID,...]\n", argv[0]);
    return 2;
  }
  const sigset_t stop = segwan::BlockStopSignals();
  auto e = segwan::loss::AltmarkEngine::Load("");
  if (!e) {
    std::fprintf(stderr, "%s\n", e.error().ToString().c_str());
    return 1;
  }
  if (auto st = (*e)->Attach(argv[1]); !st) {
    std::fprintf(stderr, "%s\n", st.error().ToString().c_str());
    return 1;
  }
  if (argc > 2) {
    std::vector<segwan::IpAddress> segs;
    std::stringstream ss(argv[2]);
    for (std::string s; std::getline(ss, s, ',');) segs.push_back(*segwan::ParseIp(s));
    if (auto st = (*e)->Start(segs, segwan::loss::Direction::kIngress, std::chrono::seconds(1)); !st) {
      std::fprintf(stderr, "%s\n", st.error().ToString().c_str());
      return 1;
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  return 0;
}
