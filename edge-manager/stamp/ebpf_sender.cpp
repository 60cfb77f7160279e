#include "edge-manager/stamp/ebpf_sender.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "segwan/log.h"
#include "segwan_stamp.h"
#include "stamp_sender.skel.h"

namespace segwan::stamp {

namespace {
// Ours, distinct from the loss counters' filter and after it: T1 as late as possible.
constexpr uint32_t kTcHandle = 0x5e6b;
constexpr uint32_t kTcPriority = 0x5e6b;
}  // namespace

Result<std::unique_ptr<EbpfSender>> EbpfSender::Load(int32_t tai_utc_offset_s) {
  stamp_sender* skel = stamp_sender__open_and_load();
  if (!skel) return Error{std::string("cannot load the STAMP T1 stamper: ") + std::strerror(errno), "", errno};
  skel->bss->tai_utc_offset_s = static_cast<uint64_t>(tai_utc_offset_s);
  return std::unique_ptr<EbpfSender>(new EbpfSender(skel));
}

EbpfSender::~EbpfSender() {
  for (int ifindex : hooks_) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
    if (bpf_tc_detach(&hook, &opts) != 0) SEGWAN_LOG(kWarn, "stamp") << "could not detach the T1 stamper";
  }
  stamp_sender__destroy(skel_);
}

Status EbpfSender::Attach(const std::string& ifname) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return Error{"no interface " + ifname, "interfaces", ENODEV};
  std::lock_guard lock(mu_);
  if (std::find(hooks_.begin(), hooks_.end(), ifindex) != hooks_.end()) return Status::Ok();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return Error{"clsact on " + ifname + ": " + std::strerror(-err), "", -err};
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(skel_->progs.stamp_sender_t1),
              .flags = BPF_TC_F_REPLACE, .handle = kTcHandle, .priority = kTcPriority);
  err = bpf_tc_attach(&hook, &opts);
  if (err) return Error{"attach the T1 stamper to " + ifname + ": " + std::strerror(-err), "", -err};
  hooks_.push_back(ifindex);
  SEGWAN_LOG(kInfo, "stamp") << "T1 stamper on " << ifname << " (TC egress)";
  return Status::Ok();
}

Status EbpfSender::SetSession(uint16_t ssid, bool ptp, uint16_t reflector_port) {
  const uint32_t key = ssid;
  stamp_sender_session s{ptp ? STAMP_F_PTP : 0u, reflector_port, 1};
  if (bpf_map__update_elem(skel_->maps.stamp_senders, &key, sizeof key, &s, sizeof s, BPF_ANY) != 0) {
    return Error{std::string("sender map: ") + std::strerror(errno), "", errno};
  }
  return Status::Ok();
}

void EbpfSender::RemoveSession(uint16_t ssid) {
  const uint32_t key = ssid;
  stamp_sender_session none{};
  bpf_map__update_elem(skel_->maps.stamp_senders, &key, sizeof key, &none, sizeof none, BPF_ANY);
}

uint64_t EbpfSender::Stamped() const {
  std::vector<uint64_t> v(static_cast<size_t>(libbpf_num_possible_cpus()));
  uint32_t zero = 0;
  if (bpf_map__lookup_elem(skel_->maps.stamp_sender_stamped, &zero, sizeof zero, v.data(), v.size() * 8, 0) != 0) return 0;
  uint64_t n = 0;
  for (auto x : v) n += x;
  return n;
}

}  // namespace segwan::stamp
