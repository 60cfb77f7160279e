// segwan-xdp-pass IFNAME...: attaches an XDP program that passes everything to each interface.
// A veth delivers frames sent to it with XDP_TX or a redirect only when its peer has an XDP
// program; the lab puts this one on the far end of every edge WAN link. The attachment stays
// after this program exits (netlink-attached XDP holds its own reference).
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "xdp_baselines.skel.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: segwan-xdp-pass IFNAME...\n");
    return 2;
  }
  xdp_baselines* skel = xdp_baselines__open_and_load();
  if (!skel) {
    std::fprintf(stderr, "segwan-xdp-pass: cannot load the program: %s\n", std::strerror(errno));
    return 1;
  }
  int rc = 0;
  for (int i = 1; i < argc; ++i) {
    const int ifindex = static_cast<int>(if_nametoindex(argv[i]));
    const int err = ifindex ? bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.xdp_pass),
                                             XDP_FLAGS_DRV_MODE, nullptr)
                            : -ENODEV;
    if (err) {
      std::fprintf(stderr, "segwan-xdp-pass: %s: %s\n", argv[i], std::strerror(-err));
      rc = 1;
    }
  }
  xdp_baselines__destroy(skel);  // detaches nothing: the interfaces keep their references
  return rc;
}
