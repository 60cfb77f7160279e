#include "edge-manager/ebpf/tc_filters.h"

#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "segwan/log.h"

namespace segwan::ebpf {

Status TcFilters::Attach(const std::string& ifname, bool egress, int prog_fd) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return Error{"no interface " + ifname, "interfaces", ENODEV};
  std::lock_guard lock(mu_);
  if (std::find(hooks_.begin(), hooks_.end(), std::make_pair(ifindex, egress)) != hooks_.end()) return Status::Ok();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);  // the clsact qdisc; one that exists already is fine
  if (err && err != -EEXIST) return Error{"clsact on " + ifname + ": " + std::strerror(-err), "", -err};
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .handle = id_, .priority = id_);
  err = bpf_tc_attach(&hook, &opts);
  if (err) {
    return Error{std::string("attach to ") + ifname + (egress ? " egress: " : " ingress: ") + std::strerror(-err), "", -err};
  }
  hooks_.emplace_back(ifindex, egress);
  return Status::Ok();
}

void TcFilters::DetachAll() {
  std::lock_guard lock(mu_);
  for (const auto& [ifindex, egress] : hooks_) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = id_, .priority = id_);
    if (bpf_tc_detach(&hook, &opts) != 0) SEGWAN_LOG(kWarn, "ebpf") << "could not detach a filter from ifindex " << ifindex;
  }
  hooks_.clear();
}

}  // namespace segwan::ebpf
