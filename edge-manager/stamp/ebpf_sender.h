#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "edge-manager/ebpf/tc_filters.h"
#include "segwan/result.h"

struct stamp_sender;  // the skeleton

namespace segwan::stamp {

// The STAMP sender's T1 stamper (bpf/stamp_sender.bpf.c) at TC egress of the WAN interfaces:
// unauthenticated test packets of the sessions set here get T1 as they leave, so the sender's
// scheduling and the stack's queues stay out of the measurement. Neither copyable nor movable;
// destroying it detaches it. Thread-safe.
class EbpfSender {
 public:
  static Result<std::unique_ptr<EbpfSender>> Load(int32_t tai_utc_offset_s);
  ~EbpfSender();
  EbpfSender(const EbpfSender&) = delete;
  EbpfSender& operator=(const EbpfSender&) = delete;

  Status Attach(const std::string& ifname);
  Status SetSession(uint16_t ssid, bool ptp, uint16_t reflector_port);
  void RemoveSession(uint16_t ssid);
  uint64_t Stamped() const;  // test packets stamped so far, all CPUs

 private:
  explicit EbpfSender(stamp_sender* skel);
  stamp_sender* skel_;
  ebpf::TcFilters tc_;
};

}  // namespace segwan::stamp
