#pragma once

// What the agent needs from the kernel, found out by trying each thing in a network namespace
// of its own (made on a thread that ends with it, so nothing is left behind and nothing the
// router runs is touched): seg6 encapsulation, the seg6local behaviours, VRF and its strict
// mode, the BPF program and map types, BTF, nftables. Used by `edge-manager --check-kernel`, by
// the agent at start (a missing required feature refuses the start with this report, never a
// raw netlink error), and by the tests that need a feature (they skip with its reason).

#include <string>
#include <vector>

#include "edge-manager/slices/slice.h"

namespace segwan::edge {

enum class KernelFeature {
  kSeg6Encap6,     // ip -6 route ... encap seg6 mode encap (IPv6 inner)
  kSeg6Encap4,     // ip route ... encap seg6 mode encap (IPv4 inner)
  kSeg6LocalEnd,   // seg6local End
  kEndDT6Table,    // seg6local End.DT6 table T (table mode)
  kEndDX4,         // seg6local End.DX4 nh4 (table mode, IPv4)
  kVrf,            // ip link add ... type vrf
  kVrfStrictMode,  // net.vrf.strict_mode can be set (End.DT4/DT46 need it)
  kEndDT4Vrf,      // seg6local End.DT4 vrftable T
  kEndDT6Vrf,      // seg6local End.DT6 vrftable T
  kEndDT46Vrf,     // seg6local End.DT46 vrftable T
  kBpfXdp,         // BPF_PROG_TYPE_XDP
  kBpfTc,          // BPF_PROG_TYPE_SCHED_CLS
  kBpfRingbuf,     // BPF_MAP_TYPE_RINGBUF
  kBpfTaiClock,    // bpf_ktime_get_tai_ns() in XDP
  kBtf,            // /sys/kernel/btf/vmlinux
  kNftables,       // nf_tables in the kernel and the nft command
};

struct FeatureCheck {
  KernelFeature feature;
  std::string name;      // "seg6 encap, IPv6 inner"
  bool present = false;
  std::string detail;    // when missing: the kernel's answer
  std::string provider;  // what provides it: a kernel option, module or sysctl
};

struct KernelReport {
  std::string release;      // uname -r
  std::string probe_error;  // the probe itself could not run (not root, no namespaces)
  std::vector<FeatureCheck> checks;

  bool Has(KernelFeature f) const;
  const FeatureCheck* Find(KernelFeature f) const;
  // "no seg6 encap, IPv6 inner in this kernel (6.18.0): lwt encapsulation type not supported;
  // provided by CONFIG_IPV6_SEG6_LWTUNNEL=y" — for skips and refusals; "" when present.
  std::string Missing(KernelFeature f) const;
};

// Tries everything; about 50 ms. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (else probe_error).
KernelReport ProbeKernel();

// What the agent cannot run without: seg6 in every mode, VRF and the End.DT* vrftable
// behaviours in VRF mode, End.DT6 by table and End.DX4 in table mode.
std::vector<KernelFeature> RequiredFeatures(SliceMode mode);
// The mode `--slice-mode` (auto, vrf or table) means here: auto is VRF when everything VRF
// mode requires works, else table.
SliceMode ChooseSliceMode(const std::string& flag, const KernelReport& report);
// One line per required feature of `mode` that is missing ("" when none is).
std::string MissingFor(const KernelReport& report, SliceMode mode);

// One line per feature ("present"/"MISSING", and what provides a missing one), marking the
// ones `mode` requires; the check of the current namespace's net.vrf.strict_mode last.
std::string FormatKernelReport(const KernelReport& report, SliceMode mode);

// `edge-manager --check-kernel`: prints the report for `slice_mode` (auto, vrf, table); 0 when
// everything that mode requires is present, 1 when not, 2 for a bad mode. `missing_only`
// (--check-kernel-missing, for scripts): only the names of the missing required features,
// one per line.
int PrintKernelCheck(const std::string& slice_mode, bool missing_only);

// The current network namespace's net.vrf.strict_mode: 1, 0, or -1 when there is no such
// sysctl (no VRF module loaded).
int VrfStrictMode();
// Sets it to 1 in the current namespace (End.DT4 and End.DT46 by vrftable refuse to install
// without it); an Error saying how to do it by hand when it cannot.
Status EnableVrfStrictMode();

}  // namespace segwan::edge
