#include "edge-manager/stamp/ebpf_sender.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "segwan/log.h"
#include "segwan_stamp.h"
#include "stamp_sender.skel.h"

namespace segwan::stamp {

namespace {
// Handle and priority of our filter: after the loss counters' (0x5e6a), T1 as late as possible.
constexpr uint32_t kTcFilter = 0x5e6b;
}  // namespace

Result<std::unique_ptr<EbpfSender>> EbpfSender::Load(int32_t tai_utc_offset_s) {
  stamp_sender* skel = stamp_sender__open_and_load();
  if (!skel) return Error{std::string("cannot load the STAMP T1 stamper: ") + std::strerror(errno), "", errno};
  skel->bss->tai_utc_offset_s = static_cast<uint64_t>(tai_utc_offset_s);
  return std::unique_ptr<EbpfSender>(new EbpfSender(skel));
}

EbpfSender::EbpfSender(stamp_sender* skel) : skel_(skel), tc_(kTcFilter) {}

EbpfSender::~EbpfSender() {
  tc_.DetachAll();
  stamp_sender__destroy(skel_);
}

Status EbpfSender::Attach(const std::string& ifname) {
  if (auto st = tc_.Attach(ifname, true, bpf_program__fd(skel_->progs.stamp_sender_t1)); !st) return st;
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
  uint64_t n = 0;
  for (auto x : ebpf::ReadPerCpu<uint64_t>(skel_->maps.stamp_sender_stamped, 0).value_or(std::vector<uint64_t>{})) n += x;
  return n;
}

}  // namespace segwan::stamp
