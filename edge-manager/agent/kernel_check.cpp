#include "edge-manager/agent/kernel_check.h"

#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "edge-manager/netlink/dataplane.h"

namespace segwan::edge {

namespace {

using netlink::Route;
using netlink::Seg6Action;
using netlink::Seg6Encap;
using netlink::Seg6Local;

constexpr const char* kSeg6Option = "CONFIG_IPV6_SEG6_LWTUNNEL=y";
constexpr uint32_t kProbeTable = 100;
constexpr uint32_t kProbeVrfTable = 101;
constexpr const char* kStrictModePath = "/proc/sys/net/vrf/strict_mode";

struct Spec {
  KernelFeature feature;
  const char* name;
  const char* provider;
};

constexpr Spec kSpecs[] = {
    {KernelFeature::kSeg6Encap6, "seg6 encap, IPv6 inner (H.Encaps)", kSeg6Option},
    {KernelFeature::kSeg6Encap4, "seg6 encap, IPv4 inner (H.Encaps)", kSeg6Option},
    {KernelFeature::kSeg6LocalEnd, "seg6local End", kSeg6Option},
    {KernelFeature::kEndDT6Table, "seg6local End.DT6 by table", kSeg6Option},
    {KernelFeature::kEndDX4, "seg6local End.DX4", kSeg6Option},
    {KernelFeature::kVrf, "VRF devices", "CONFIG_NET_VRF (module vrf)"},
    {KernelFeature::kVrfStrictMode, "net.vrf.strict_mode",
     "CONFIG_NET_VRF: the sysctl exists once the vrf module is loaded"},
    {KernelFeature::kEndDT4Vrf, "seg6local End.DT4 by vrftable",
     "CONFIG_IPV6_SEG6_LWTUNNEL=y, Linux 5.11 or later, VRF with net.vrf.strict_mode=1"},
    {KernelFeature::kEndDT6Vrf, "seg6local End.DT6 by vrftable",
     "CONFIG_IPV6_SEG6_LWTUNNEL=y, Linux 5.11 or later, VRF"},
    {KernelFeature::kEndDT46Vrf, "seg6local End.DT46 by vrftable",
     "CONFIG_IPV6_SEG6_LWTUNNEL=y, Linux 5.14 or later, VRF with net.vrf.strict_mode=1"},
    {KernelFeature::kBpfXdp, "BPF XDP programs", "CONFIG_BPF_SYSCALL=y"},
    {KernelFeature::kBpfTc, "BPF TC (clsact) programs", "CONFIG_NET_CLS_BPF and CONFIG_NET_SCH_INGRESS"},
    {KernelFeature::kBpfRingbuf, "BPF ring buffer maps", "Linux 5.8 or later, CONFIG_BPF_SYSCALL=y"},
    {KernelFeature::kBpfTaiClock, "bpf_ktime_get_tai_ns() in XDP", "Linux 6.1 or later"},
    {KernelFeature::kBtf, "kernel BTF (/sys/kernel/btf/vmlinux)", "CONFIG_DEBUG_INFO_BTF=y"},
    {KernelFeature::kNftables, "nftables (kernel and nft command)",
     "CONFIG_NF_TABLES (module nf_tables) and the nft command (Debian package nftables)"},
};

IpAddress A(const char* s) { return *ParseIp(s); }
IpPrefix P(const char* s) { return *ParsePrefix(s); }

std::string ReadLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool WriteLine(const char* path, const char* text) {
  std::ofstream out(path);
  if (!out) return false;
  out << text << "\n";
  out.flush();
  return static_cast<bool>(out);
}

// Asks nf_tables for its generation over nfnetlink: answered only where nf_tables is there.
std::string ProbeNftables() {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return std::string("no netfilter netlink socket: ") + strerror(errno);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct {
    nlmsghdr h;
    nfgenmsg g;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.h.nlmsg_seq = 1;
  req.g.nfgen_family = AF_UNSPEC;
  req.g.version = NFNETLINK_V0;
  std::string why;
  if (send(fd, &req, sizeof req, 0) < 0) {
    why = std::string("nfnetlink: ") + strerror(errno);
  } else {
    alignas(nlmsghdr) char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
    if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) {
      why = std::string("nf_tables did not answer: ") + (n < 0 ? strerror(errno) : "short answer");
    } else if (h->nlmsg_type == NLMSG_ERROR) {
      const int err = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      if (err != 0) why = std::string("nf_tables: ") + strerror(err);
    }
  }
  close(fd);
  if (!why.empty()) return why;
  if (system("command -v nft >/dev/null 2>&1") != 0) return "the kernel has nf_tables, but there is no nft command";
  return "";
}

void Record(KernelReport& r, KernelFeature f, const Status& st) {
  for (auto& c : r.checks) {
    if (c.feature != f) continue;
    c.present = st.ok();
    if (!st.ok()) c.detail = st.error().message;
  }
}

// Sets net.vrf.strict_mode=1 in the calling thread's network namespace.
Status SetStrictMode() {
  if (access(kStrictModePath, F_OK) != 0) {
    return Error{"no such sysctl (" + std::string(kStrictModePath) + "): no VRF module", "", ENOENT};
  }
  if (!WriteLine(kStrictModePath, "1") || ReadLine(kStrictModePath) != "1") {
    return Error{std::string("cannot set it: ") + strerror(errno), "", errno};
  }
  return Status::Ok();
}

// Each check runs on its own; one missing feature does not hide the others.
void ProbeInNamespace(KernelReport& r) {
  auto dp = netlink::OpenNetlinkDataplane();
  if (!dp) {
    r.probe_error = "cannot open rtnetlink: " + dp.error().ToString();
    return;
  }
  auto& d = **dp;
  (void)d.SetLinkUp("lo", true);
  auto sid = d.EnsureSidDevice("probe0");
  if (!sid) {
    r.probe_error = "cannot create a veth to probe with: " + sid.error().ToString();
    return;
  }
  auto route = [&](KernelFeature f, Route rt) {
    rt.oif = *sid;
    Record(r, f, d.ReplaceRoute(rt));
  };
  route(KernelFeature::kSeg6Encap6,
        Route{.dst = P("fd00:5e6::/64"), .table = kProbeTable,
              .encap = Seg6Encap{netlink::EncapMode::kEncap, {A("fc00::1")}}});
  route(KernelFeature::kSeg6Encap4,
        Route{.dst = P("10.254.0.0/24"), .table = kProbeTable,
              .encap = Seg6Encap{netlink::EncapMode::kEncap, {A("fc00::1")}}});
  route(KernelFeature::kSeg6LocalEnd,
        Route{.dst = P("fc00:5e6::e/128"), .encap = Seg6Local{.action = Seg6Action::kEnd}});
  route(KernelFeature::kEndDT6Table,
        Route{.dst = P("fc00:5e6::d6/128"),
              .encap = Seg6Local{.action = Seg6Action::kEndDT6, .table = kProbeTable}});
  route(KernelFeature::kEndDX4,
        Route{.dst = P("fc00:5e6::d4/128"),
              .encap = Seg6Local{.action = Seg6Action::kEndDX4, .nh4 = A("10.254.1.1")}});
  Record(r, KernelFeature::kVrf, d.CreateVrf("vrfprobe", kProbeVrfTable));
  Record(r, KernelFeature::kVrfStrictMode, SetStrictMode());
  route(KernelFeature::kEndDT4Vrf,
        Route{.dst = P("fc00:5e6::a4/128"),
              .encap = Seg6Local{.action = Seg6Action::kEndDT4, .vrf_table = kProbeVrfTable}});
  route(KernelFeature::kEndDT6Vrf,
        Route{.dst = P("fc00:5e6::a6/128"),
              .encap = Seg6Local{.action = Seg6Action::kEndDT6, .vrf_table = kProbeVrfTable}});
  route(KernelFeature::kEndDT46Vrf,
        Route{.dst = P("fc00:5e6::a46/128"),
              .encap = Seg6Local{.action = Seg6Action::kEndDT46, .vrf_table = kProbeVrfTable}});
  const std::string nft = ProbeNftables();
  Record(r, KernelFeature::kNftables, nft.empty() ? Status::Ok() : Status(Error{nft, "", 0}));
}

Status BpfProbe(int answer, const char* what) {
  if (answer > 0) return Status::Ok();
  if (answer == 0) return Error{std::string("the kernel does not know ") + what, "", 0};
  return Error{std::string(what) + ": " + strerror(-answer), "", -answer};
}

}  // namespace

const FeatureCheck* KernelReport::Find(KernelFeature f) const {
  for (const auto& c : checks) {
    if (c.feature == f) return &c;
  }
  return nullptr;
}

bool KernelReport::Has(KernelFeature f) const {
  const auto* c = Find(f);
  return probe_error.empty() && c && c->present;
}

std::string KernelReport::Missing(KernelFeature f) const {
  if (Has(f)) return "";
  const auto* c = Find(f);
  std::string out = "no " + (c ? c->name : std::string("such feature")) + " in this kernel (" + release + ")";
  if (!probe_error.empty()) return out + ": cannot probe: " + probe_error;
  if (c && !c->detail.empty()) out += ": " + c->detail;
  if (c) out += "; provided by " + c->provider;
  return out;
}

KernelReport ProbeKernel() {
  KernelReport r;
  utsname u{};
  if (uname(&u) == 0) r.release = u.release;
  for (const auto& s : kSpecs) r.checks.push_back(FeatureCheck{s.feature, s.name, false, "", s.provider});

  // BPF and BTF do not depend on the namespace.
  Record(r, KernelFeature::kBpfXdp, BpfProbe(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr), "XDP programs"));
  Record(r, KernelFeature::kBpfTc,
      BpfProbe(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, nullptr), "TC programs"));
  Record(r, KernelFeature::kBpfRingbuf,
      BpfProbe(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr), "ring buffer maps"));
  Record(r, KernelFeature::kBpfTaiClock,
      BpfProbe(libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, BPF_FUNC_ktime_get_tai_ns, nullptr),
               "bpf_ktime_get_tai_ns"));
  Record(r, KernelFeature::kBtf, access("/sys/kernel/btf/vmlinux", R_OK) == 0
                               ? Status::Ok()
                               : Status(Error{"/sys/kernel/btf/vmlinux is missing", "", ENOENT}));

  // The rest in a namespace of a thread's own: it goes away with the thread.
  std::thread probe([&r] {
    if (unshare(CLONE_NEWNET) != 0) {
      r.probe_error = std::string("cannot make a network namespace to probe in (needs root): ") + strerror(errno);
      return;
    }
    ProbeInNamespace(r);
  });
  probe.join();
  return r;
}

std::vector<KernelFeature> RequiredFeatures(SliceMode mode) {
  std::vector<KernelFeature> f{KernelFeature::kSeg6Encap6, KernelFeature::kSeg6Encap4,
                               KernelFeature::kSeg6LocalEnd};
  if (mode == SliceMode::kVrf) {
    f.insert(f.end(), {KernelFeature::kVrf, KernelFeature::kVrfStrictMode, KernelFeature::kEndDT4Vrf,
                       KernelFeature::kEndDT6Vrf, KernelFeature::kEndDT46Vrf});
  } else {
    f.insert(f.end(), {KernelFeature::kEndDT6Table, KernelFeature::kEndDX4});
  }
  return f;
}

SliceMode ChooseSliceMode(const std::string& flag, const KernelReport& report) {
  if (flag == "vrf") return SliceMode::kVrf;
  if (flag == "table") return SliceMode::kTable;
  return MissingFor(report, SliceMode::kVrf).empty() ? SliceMode::kVrf : SliceMode::kTable;
}

std::string MissingFor(const KernelReport& report, SliceMode mode) {
  std::string out;
  for (auto f : RequiredFeatures(mode)) {
    if (!report.Has(f)) out += "\n  " + report.Missing(f);
  }
  return out;
}

std::string FormatKernelReport(const KernelReport& report, SliceMode mode) {
  std::ostringstream out;
  out << "kernel " << report.release << ", slices in " << SliceModeName(mode) << " mode\n";
  if (!report.probe_error.empty()) out << "cannot probe the network features: " << report.probe_error << "\n";
  const auto required = RequiredFeatures(mode);
  for (const auto& c : report.checks) {
    const bool needed = std::find(required.begin(), required.end(), c.feature) != required.end();
    char line[96];
    std::snprintf(line, sizeof line, "  %-8s %-10s %s", report.Has(c.feature) ? "present" : "MISSING",
                  needed ? "required" : "optional", c.name.c_str());
    out << line << "\n";
    if (!report.Has(c.feature)) {
      if (!c.detail.empty()) out << "           kernel said: " << c.detail << "\n";
      out << "           provided by: " << c.provider << "\n";
    }
  }
  const int strict = VrfStrictMode();
  out << "  net.vrf.strict_mode in this namespace: "
      << (strict < 0 ? "no such sysctl (no VRF module loaded)" : strict ? "1" : "0")
      << (mode == SliceMode::kVrf && strict != 1 ? " (the agent sets it to 1 when it starts)" : "") << "\n";
  return out.str();
}

int PrintKernelCheck(const std::string& slice_mode, bool missing_only) {
  if (slice_mode != "auto" && slice_mode != "vrf" && slice_mode != "table") {
    std::fprintf(stderr, "edge-manager: --slice-mode: must be auto, vrf or table\n");
    return 2;
  }
  const KernelReport report = ProbeKernel();
  const SliceMode mode = ChooseSliceMode(slice_mode, report);
  if (missing_only) {  // one line per missing required feature, for scripts
    for (auto f : RequiredFeatures(mode)) {
      if (!report.Has(f)) std::printf("%s\n", report.Find(f)->name.c_str());
    }
    return MissingFor(report, mode).empty() ? 0 : 1;
  }
  std::fputs(FormatKernelReport(report, mode).c_str(), stdout);
  if (!MissingFor(report, mode).empty()) {
    std::printf("this kernel cannot run the agent in %s mode\n", SliceModeName(mode));
    return 1;
  }
  std::printf("this kernel can run the agent in %s mode\n", SliceModeName(mode));
  return 0;
}

int VrfStrictMode() {
  if (access(kStrictModePath, F_OK) != 0) return -1;
  return ReadLine(kStrictModePath) == "1" ? 1 : 0;
}

Status EnableVrfStrictMode() {
  if (VrfStrictMode() == 1) return Status::Ok();
  if (auto st = SetStrictMode(); !st) {
    return Error{"net.vrf.strict_mode=1 in the agent's network namespace: " + st.error().message +
                     "; End.DT4 and End.DT46 need it: run `sysctl -w net.vrf.strict_mode=1` there, "
                     "or start with --slice-mode table",
                 "--slice-mode", st.error().code};
  }
  return Status::Ok();
}

}  // namespace segwan::edge
